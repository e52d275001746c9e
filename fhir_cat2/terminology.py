"""Code-system URIs: the canonical ones we write, and the variants we accept on input (domain.md §1.1)."""

from __future__ import annotations

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
CVX = "http://hl7.org/fhir/sid/cvx"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CDT = "http://www.ada.org/cdt"  # ADA dental procedure codes (CMS74, CMS75)
UCUM = "http://unitsofmeasure.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

# Short names a rules table may use instead of a URI.
SHORT_NAMES: dict[str, str] = {
    "loinc": LOINC,
    "snomed": SNOMED,
    "cpt": CPT,
    "hcpcs": HCPCS,
    "icd10cm": ICD10CM,
    "icd-10-cm": ICD10CM,
    "icd10pcs": ICD10PCS,
    "cvx": CVX,
    "rxnorm": RXNORM,
    "cdt": CDT,
    "actcode": ACT_CODE,
}

# Variants seen in the wild for the same systems (VSAC expansions, OIDs, trailing slashes).
_ALIASES: dict[str, str] = {
    "http://www.nlm.nih.gov/research/umls/hcpcs": HCPCS,
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": HCPCS,
    "urn:oid:2.16.840.1.113883.6.285": HCPCS,
    "urn:oid:2.16.840.1.113883.6.14": HCPCS,
    "urn:oid:2.16.840.1.113883.6.1": LOINC,
    "https://loinc.org": LOINC,
    "http://loinc.org/": LOINC,
    "urn:oid:2.16.840.1.113883.6.96": SNOMED,
    "https://snomed.info/sct": SNOMED,
    "http://snomed.info/sct/": SNOMED,
    "urn:oid:2.16.840.1.113883.6.12": CPT,
    "https://www.ama-assn.org/go/cpt": CPT,
    "urn:oid:2.16.840.1.113883.6.90": ICD10CM,
    "http://hl7.org/fhir/sid/icd-10-cm/": ICD10CM,
    "urn:oid:2.16.840.1.113883.6.4": ICD10PCS,
    "urn:oid:2.16.840.1.113883.12.292": CVX,
    "urn:oid:2.16.840.1.113883.6.88": RXNORM,
    "urn:oid:2.16.840.1.113883.6.13": CDT,
}

KNOWN_SYSTEMS = frozenset(
    {LOINC, SNOMED, CPT, HCPCS, ICD10CM, ICD10PCS, CVX, RXNORM, CDT, UCUM, ACT_CODE, OBSERVATION_CATEGORY}
)


def normalise_system(system: str | None) -> str:
    """Canonical URI for a code system URI or short name; unknown systems pass through unchanged."""
    if not system:
        return ""
    return _ALIASES.get(system) or SHORT_NAMES.get(system.lower(), system)
