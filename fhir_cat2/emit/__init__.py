"""Emitters: the only place FHIR R4B models are built and validated."""
