"""fhir-cat2: CPT Category II and HCPCS quality-data codes from FHIR R4 documentation.

The public API is small on purpose; the command line (``fhir-cat2``) is the main interface.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _installed_version

from .errors import ConfigError, FhirCat2Error, InputError, RulesError, ServerError

try:
    __version__ = _installed_version("fhir-cat2")  # one source: pyproject's [project].version
except PackageNotFoundError:  # pragma: no cover - imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["ConfigError", "FhirCat2Error", "InputError", "RulesError", "ServerError", "__version__"]
