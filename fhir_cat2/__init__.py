"""fhir-cat2: CPT Category II and HCPCS quality-data codes from FHIR R4 documentation.

The public API is small on purpose; the command line (``fhir-cat2``) is the main interface.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import ConfigError, FhirCat2Error, InputError, RulesError, ServerError

__all__ = ["ConfigError", "FhirCat2Error", "InputError", "RulesError", "ServerError", "__version__"]
