"""Replay benchmark: ``fhir-cat2 replay`` against orjson parse-only, on the same corpus, at several sizes.

Run by hand with the project's interpreter (it is not a test)::

    .venv/bin/python benchmarks/replay.py --sizes 200000,400000 --format both
    .venv/bin/python benchmarks/replay.py --resources 200000 --check   # exit 1 if replay < 1/3 of parse-only
    .venv/bin/python benchmarks/replay.py --from ../shared/corpus/smart-synthea-r4 --sizes 200000
    .venv/bin/python benchmarks/replay.py --from fixtures --period 2025 --sizes 20000   # our 11 patients

By default (fixtures/ is too small to be representative) it writes, per size, a seeded, deterministic
synthetic corpus with fresh uuid ids into a temporary folder: one transaction Bundle per patient
(``bundles``) and/or bulk-export NDJSON, one file per resource type, all patients mixed (``ndjson``: the
patient grouper spills to disk).
``--from DIR`` replicates a corpus folder instead, every uuid rewritten per copy. Each measured run is a child
process of its own, so ``wait4`` gives its peak RSS alone: the baseline reads the same files (gunzip too),
parses them with orjson and counts resources; the replay is ``python -m fhir_cat2 replay``. Rates are end to
end, interpreter start included (the package byte-compiled first, as an install does), on wall time; CPU
time is shown too, as a busy machine inflates wall time.
The claim: replay >= 1/3 of the parse-only rate, and replay peak RSS flat with corpus size.
"""

from __future__ import annotations

import argparse
import compileall
import gzip
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, cast

import orjson

SUFFIXES = (".json", ".ndjson", ".jsonl")
UUID_RE = re.compile(rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
URN_RE = re.compile(rb"urn:uuid:(" + UUID_RE.pattern + rb")")
LOINC, SNOMED, CPT = "http://loinc.org", "http://snomed.info/sct", "http://www.ama-assn.org/go/cpt"
ICD10, CVX = "http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/cvx"
RXNORM, HL7 = "http://www.nlm.nih.gov/research/umls/rxnorm", "http://terminology.hl7.org/CodeSystem/"
TAG = {"tag": [{"system": "https://example.org/fhir-cat2/benchmark", "code": "synthetic"}]}
# (CPT, SNOMED, display, class, weight): mostly office visits, as in a primary-care export
VISITS = [
    ("99213", "185349003", "Check up", "AMB", 5),
    ("99214", "390906007", "Follow-up", "AMB", 3),
    ("99212", "185345009", "Symptom", "AMB", 3),
    ("99283", "50849002", "Emergency", "EMER", 1),
    ("99222", "32485007", "Hospital admission", "IMP", 0.3),
]
# (LOINC, display, unit, low, high, share of visits): vitals and labs no rule reads
Measured = tuple[str, str, str, float, float, float]
VITALS: list[Measured] = [
    ("8867-4", "Heart rate", "/min", 55, 100, 1),
    ("9279-1", "Respiratory rate", "/min", 12, 20, 1),
    ("29463-7", "Body weight", "kg", 50, 120, 1),
    ("8310-5", "Body temperature", "Cel", 36, 37.6, 0.3),
    ("8302-2", "Body height", "cm", 150, 192, 0.3),
    ("39156-5", "BMI", "kg/m2", 18, 38, 0.3),
    ("72514-3", "Pain severity", "{score}", 0, 10, 0.3),
]
PANEL: list[Measured] = [
    ("2345-7", "Glucose", "mg/dL", 70, 200, 1),
    ("2160-0", "Creatinine", "mg/dL", 0.6, 1.4, 1),
    ("2951-2", "Sodium", "mmol/L", 135, 145, 1),
    ("6298-4", "Potassium", "mmol/L", 3.5, 5.1, 1),
    ("6299-2", "Urea nitrogen", "mg/dL", 7, 20, 1),
    ("17861-6", "Calcium", "mg/dL", 8.5, 10.2, 1),
    ("2075-0", "Chloride", "mmol/L", 98, 107, 1),
]
ACUTE = [("444814009", "Viral sinusitis"), ("195662009", "Viral pharyngitis"), ("10509002", "Bronchitis")]
PROCEDURES = [("428191000124101", "Current medications documented"), ("430193006", "Med reconciliation")]
LISINOPRIL = ("314076", "lisinopril 10 MG Oral Tablet")
MMHG = "mm[Hg]"


def cc(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": round(value, 1), "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}


def usd(value: float) -> dict[str, Any]:
    return {"value": round(value, 2), "currency": "USD"}


def ref(id_: str) -> dict[str, str]:
    return {"reference": f"urn:uuid:{id_}"}


class PatientBuilder:
    """One synthetic patient, Synthea-like: the resources of a transaction Bundle with urn:uuid references."""

    def __init__(self, rng: random.Random, practitioner: str, organization: str) -> None:
        self.rng = rng
        self.resources: list[dict[str, Any]] = []
        self.types: dict[bytes, bytes] = {}  # id -> resource type, to write Type/id references in NDJSON
        self.practitioner = {"reference": f"Practitioner/{practitioner}"}
        self.organization = {"reference": f"Organization/{organization}"}
        self.subject = ref(
            self.add(
                "Patient",
                {
                    "identifier": [{"system": "https://example.org/mrn", "value": str(rng.randrange(10**9))}],
                    "name": [
                        {"use": "official", "family": f"Family{rng.randrange(10**6)}", "given": ["Given"]}
                    ],
                    "gender": rng.choice(["male", "female"]),
                    "birthDate": f"{rng.randint(1935, 2004)}-06-15",
                    "address": [
                        {"line": [f"{rng.randrange(999)} Main St"], "city": "Springfield", "state": "MA"}
                    ],
                },
            )
        )

    def add(self, resource_type: str, body: dict[str, Any]) -> str:
        id_ = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.resources.append({"resourceType": resource_type, "id": id_, "meta": TAG, **body})
        self.types[id_.encode()] = resource_type.encode()
        return id_

    def condition(self, system: str, code: str, display: str, onset: str, **extra: Any) -> str:
        clinical = cc(f"{HL7}condition-clinical", "active", "Active")
        return self.add(
            "Condition",
            {
                "clinicalStatus": clinical,
                "code": cc(system, code, display),
                "subject": self.subject,
                "onsetDateTime": onset,
                "recordedDate": onset,
                **extra,
            },
        )

    def observation(self, category: str, code: str, display: str, visit: str, when: str, **value: Any) -> str:
        return self.add(
            "Observation",
            {
                "status": "final",
                "category": [cc(f"{HL7}observation-category", category, category)],
                "code": cc(LOINC, code, display),
                "subject": self.subject,
                "encounter": ref(visit),
                "effectiveDateTime": when,
                "issued": when,
                **value,
            },
        )

    def measured(self, category: str, table: list[Measured], visit: str, when: str) -> list[str]:
        """Observations of ``table`` (each with its share of visits), values uniform in the row's range."""
        made = []
        for code, label, unit, low, high, share in table:
            if self.rng.random() < share:
                value = quantity(self.rng.uniform(low, high), unit)
                made.append(self.observation(category, code, label, visit, when, valueQuantity=value))
        return made

    def build(self) -> list[dict[str, Any]]:
        rng = self.rng
        hypertensive, diabetic = rng.random() < 0.4, rng.random() < 0.2
        sbp, dbp = rng.gauss(132 if hypertensive else 117, 10), rng.gauss(84 if hypertensive else 75, 6)
        a1c = rng.uniform(6.0, 10.5) if diabetic else rng.uniform(4.8, 5.9)
        if hypertensive:
            self.condition(ICD10, "I10", "Essential hypertension", f"{rng.randint(2010, 2021)}-03-01")
        if diabetic:
            self.condition(ICD10, "E11.9", "Type 2 diabetes mellitus without complications", "2018-06-01")
        if rng.random() < 0.3:
            self.condition(SNOMED, "55822004", "Hyperlipidemia", f"{rng.randint(2005, 2021)}-01-15")
        epoch = datetime(2022, 1, 1, 8, tzinfo=UTC)
        for days in sorted(rng.randrange(1096 * 8) for _ in range(rng.randint(10, 20))):
            start = epoch + timedelta(days=days // 8, hours=days % 8)
            cpt, sct, display, klass, _ = rng.choices(VISITS, [v[4] for v in VISITS])[0]
            when, end = start.isoformat(), (start + timedelta(minutes=rng.choice([15, 30, 45]))).isoformat()
            visit = self.add(
                "Encounter",
                {
                    "status": "finished",
                    "class": {"system": f"{HL7}v3-ActCode", "code": klass},
                    "type": [{"coding": [{"system": CPT, "code": cpt}, {"system": SNOMED, "code": sct}]}],
                    "subject": self.subject,
                    "participant": [{"individual": self.practitioner}],
                    "period": {"start": when, "end": end},
                    "serviceProvider": self.organization,
                },
            )
            diagnoses = []
            if klass == "AMB" and rng.random() < 0.3:
                diagnoses.append(self.condition(SNOMED, *rng.choice(ACUTE), when, encounter=ref(visit)))
            if klass != "IMP" and rng.random() < 0.9:
                systolic, diastolic = quantity(rng.gauss(sbp, 8), MMHG), quantity(rng.gauss(dbp, 6), MMHG)
                self.observation(
                    "vital-signs",
                    "85354-9",
                    "Blood pressure panel",
                    visit,
                    when,
                    component=[
                        {"code": cc(LOINC, "8480-6", "Systolic"), "valueQuantity": systolic},
                        {"code": cc(LOINC, "8462-4", "Diastolic"), "valueQuantity": diastolic},
                    ],
                )
            self.measured("vital-signs", VITALS, visit, when)
            if rng.random() < 0.2:
                self.add(
                    "DiagnosticReport",
                    {
                        "status": "final",
                        "code": cc(LOINC, "51990-0", "Basic panel"),
                        "subject": self.subject,
                        "encounter": ref(visit),
                        "effectiveDateTime": when,
                        "result": [ref(r) for r in self.measured("laboratory", PANEL, visit, when)],
                    },
                )
            if rng.random() < (0.5 if diabetic else 0.04):
                a1c_value = quantity(rng.gauss(a1c, 0.5), "%")
                self.observation("laboratory", "4548-4", "HbA1c", visit, when, valueQuantity=a1c_value)
            if rng.random() < 0.5:
                self.add(
                    "Procedure",
                    {
                        "status": "completed",
                        "code": cc(SNOMED, *rng.choice(PROCEDURES)),
                        "subject": self.subject,
                        "encounter": ref(visit),
                        "performedDateTime": when,
                    },
                )
            if rng.random() < 0.15:
                self.add(
                    "Immunization",
                    {
                        "status": "completed",
                        "vaccineCode": cc(CVX, "140", "Influenza"),
                        "patient": self.subject,
                        "encounter": ref(visit),
                        "occurrenceDateTime": when,
                    },
                )
            if hypertensive and rng.random() < 0.3:
                medication = cc(RXNORM, *LISINOPRIL)
                prescription = self.add(
                    "MedicationRequest",
                    {
                        "status": "active",
                        "intent": "order",
                        "medicationCodeableConcept": medication,
                        "subject": self.subject,
                        "encounter": ref(visit),
                        "authoredOn": when,
                        "requester": self.practitioner,
                    },
                )
                self.claim(visit, when, end, "pharmacy", medication, [], {"prescription": ref(prescription)})
            self.claim(visit, when, end, "professional", cc(CPT, cpt, display), diagnoses, {})
        return self.resources

    def claim(
        self,
        visit: str,
        start: str,
        end: str,
        kind: str,
        service: dict[str, Any],
        diagnoses: list[str],
        extra: dict[str, Any],
    ) -> None:
        """A billing Claim and its ExplanationOfBenefit: much of a Synthea export's bytes, read by no rule."""
        cost = self.rng.uniform(50, 900)
        item = {"sequence": 1, "productOrService": service, "encounter": [ref(visit)], "net": usd(cost)}
        body = {
            "status": "active",
            "type": cc(f"{HL7}claim-type", kind, kind),
            "use": "claim",
            "patient": self.subject,
            "billablePeriod": {"start": start, "end": end},
            "created": end,
            "provider": self.organization,
            "priority": cc(f"{HL7}processpriority", "normal", "Normal"),
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Medicare"}}],
            "diagnosis": [{"sequence": i + 1, "diagnosisReference": ref(d)} for i, d in enumerate(diagnoses)],
            "item": [item],
            "total": usd(cost),
            **extra,
        }
        claim = self.add("Claim", body)
        adjudication = [
            {"category": cc(f"{HL7}adjudication", code, code), "amount": usd(cost * share)}
            for code, share in (("submitted", 1), ("eligible", 0.8), ("benefit", 0.64))
        ]
        coverage = {
            "resourceType": "Coverage",
            "id": "coverage",
            "status": "active",
            "payor": [{"display": "Medicare"}],
            "type": {"text": "Medicare"},
            "beneficiary": self.subject,
        }
        self.add(
            "ExplanationOfBenefit",
            body
            | {
                "contained": [coverage],
                "insurer": {"display": "Medicare"},
                "claim": ref(claim),
                "identifier": [
                    {"system": "https://bluebutton.cms.gov/resources/variables/clm_id", "value": claim}
                ],
                "outcome": "complete",
                "insurance": [{"focal": True, "coverage": {"reference": "#coverage"}}],
                "careTeam": [
                    {
                        "sequence": 1,
                        "provider": self.practitioner,
                        "role": cc(f"{HL7}claimcareteamrole", "primary", "Primary provider"),
                    }
                ],
                "item": [
                    item
                    | {
                        "adjudication": adjudication,
                        "servicedPeriod": {"start": start, "end": end},
                        "locationCodeableConcept": cc(f"{HL7}ex-serviceplace", "11", "Office"),
                    }
                ],
                "total": adjudication[:2],
                "payment": {"amount": usd(cost * 0.64)},
            },
        )


class CorpusWriter:
    """Bundles: a transaction Bundle file per patient. NDJSON: a file per resource type, patients mixed."""

    def __init__(self, root: Path, formats: list[str], gz: bool) -> None:
        self.root, self.formats, self.gz = root, formats, gz
        self.mix: Counter[str] = Counter()
        self.handles: dict[str, IO[bytes]] = {}
        for fmt in formats:
            (root / fmt).mkdir(parents=True, exist_ok=True)

    def open(self, path: Path) -> IO[bytes]:
        return cast(IO[bytes], gzip.open(f"{path}.gz", "wb", compresslevel=1)) if self.gz else path.open("wb")

    def add(self, name: str, resources: list[dict[str, Any]], types: dict[bytes, bytes]) -> None:
        self.mix.update(r["resourceType"] for r in resources)
        if "bundles" in self.formats:
            entries = [
                {
                    "fullUrl": f"urn:uuid:{r['id']}",
                    "resource": r,
                    "request": {"method": "POST", "url": r["resourceType"]},
                }
                for r in resources
            ]
            with self.open(self.root / "bundles" / f"{name}.json") as fh:
                fh.write(orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}))
        for r in resources if "ndjson" in self.formats else []:  # bulk export: Type/id references, no urn
            kind = r["resourceType"]
            if kind not in self.handles:
                self.handles[kind] = self.open(self.root / "ndjson" / f"{kind}.ndjson")
            line = URN_RE.sub(lambda m: types[m.group(1)] + b"/" + m.group(1), orjson.dumps(r))
            self.handles[kind].write(line + b"\n")

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()


def generate(root: Path, target: int, formats: list[str], seed: int, gz: bool) -> None:
    shared = random.Random(seed)
    practitioners = [str(uuid.UUID(int=shared.getrandbits(128), version=4)) for _ in range(50)]
    organizations = [str(uuid.UUID(int=shared.getrandbits(128), version=4)) for _ in range(20)]
    writer = CorpusWriter(root, formats, gz)
    pool = [{"resourceType": "Practitioner", "id": p, "name": [{"family": "Doctor"}]} for p in practitioners]
    pool += [{"resourceType": "Organization", "id": o, "name": "Clinic"} for o in organizations]
    writer.add("practitionerInformation", pool, {})
    patients = 0
    while writer.mix.total() < target:
        rng = random.Random(seed * 1_000_003 + patients)  # patient i is the same at every size
        builder = PatientBuilder(rng, rng.choice(practitioners), rng.choice(organizations))
        writer.add(f"patient-{patients:06d}", builder.build(), builder.types)
        patients += 1
    writer.close()
    mix = ", ".join(f"{kind} {n * 100 / writer.mix.total():.0f}%" for kind, n in writer.mix.most_common(5))
    print(f"  generated {patients} patients, {writer.mix.total()} resources ({mix})", flush=True)


def input_files(root: Path) -> list[Path]:
    """The files fhir-cat2 replay reads, in its order."""
    found = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        found += [Path(folder) / n for n in sorted(names) if n.lower().removesuffix(".gz").endswith(SUFFIXES)]
    return found


def read_bytes(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.name.lower().endswith(".gz") else path.read_bytes()


def count_resources(path: Path, data: bytes) -> int:
    """The baseline: parse with orjson only, counting Bundle entries, NDJSON lines or single resources."""
    if path.name.lower().removesuffix(".gz").endswith((".ndjson", ".jsonl")):
        documents: Iterable[Any] = (orjson.loads(line) for line in data.split(b"\n") if line.strip())
    else:
        documents = [orjson.loads(data)]
    return sum(len(d.get("entry") or []) if d.get("resourceType") == "Bundle" else 1 for d in documents)


def replicate(source: Path, root: Path, target: int, seed: int, gz: bool) -> None:
    """Copies of ``source`` up to ``target`` resources; each copy maps every uuid to a fresh one (uuid5)."""
    originals = [(path, read_bytes(path)) for path in input_files(source)]
    per_copy = sum(count_resources(path, data) for path, data in originals)
    copies = max(1, -(-target // per_copy))
    for copy in range(copies):
        namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"fhir-cat2-benchmark/{seed}/{copy}")

        def fresh(match: re.Match[bytes], ns: uuid.UUID = namespace) -> bytes:
            return str(uuid.uuid5(ns, match.group(0).decode().lower())).encode()

        for path, data in originals:
            relative = path.relative_to(source)
            name = UUID_RE.sub(fresh, os.fsencode(relative.name.removesuffix(".gz"))).decode()
            dest = root / "from" / f"copy{copy:04d}" / relative.parent / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            with gzip.open(f"{dest}.gz", "wb", compresslevel=1) if gz else dest.open("wb") as fh:
                fh.write(UUID_RE.sub(fresh, data))
    print(f"  replicated {source} x{copies}: {per_copy * copies} resources", flush=True)


def measure(command: list[str], log: Path) -> tuple[float, float, float, int]:
    """Wall and CPU seconds, peak RSS (MB) and exit code of one child; its stdout and stderr go to ``log``."""
    with log.open("wb") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)  # this child's rusage alone, unlike RUSAGE_CHILDREN
        seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    rss_mb = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return seconds, usage.ru_utime + usage.ru_stime, rss_mb, child.returncode


def compile_package() -> None:
    """Byte-compile fhir_cat2 as ``pip install`` does: an editable install run with PYTHONDONTWRITEBYTECODE
    set (CI images often set it) would otherwise compile every module again at each start."""
    import fhir_cat2

    compileall.compile_dir(Path(fhir_cat2.__file__).parent, quiet=1)


def bench(corpus: Path, work: Path, period: int | None) -> dict[str, float]:
    work.mkdir(parents=True, exist_ok=True)
    base_log, replay_log, out = work / "parse-only.log", work / "replay.log", work / "replay-out"
    baseline = [sys.executable, __file__, "--parse-only", str(corpus)]
    base_s, base_cpu, base_rss, code = measure(baseline, base_log)
    if code != 0:
        raise SystemExit(f"parse-only baseline failed ({code}):\n{base_log.read_text()}")
    resources = int(base_log.read_text().split()[-1])
    replay = [sys.executable, "-m", "fhir_cat2", "replay", str(corpus), "--out", str(out)]
    replay += ["--period", str(period)] if period else []
    replay_s, replay_cpu, replay_rss, code = measure(replay, replay_log)
    if code not in (0, 1):  # 1: completed, with quarantined items
        raise SystemExit(f"replay failed ({code}):\n{replay_log.read_text()}")
    read = orjson.loads((out / "run-report.json").read_bytes())["resources_read"]
    if read != resources:
        print(f"  WARNING: replay read {read} resources, parse-only counted {resources}", flush=True)
    print(f"  {corpus.name}: parse-only {base_s:.1f}s, replay {replay_s:.1f}s", flush=True)
    return {
        "resources": resources,
        "base_rate": resources / base_s,
        "replay_rate": resources / replay_s,
        "base_rss": base_rss,
        "replay_rss": replay_rss,
        "base_s": base_s,
        "replay_s": replay_s,
        "base_cpu": base_cpu,
        "replay_cpu": replay_cpu,
    }


ROW = "{:>7} {:>8} {:>9} {:>12} {:>12} {:>6} {:>13} {:>13} {:>16} {:>16}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fhir-cat2 replay against orjson parse-only")
    parser.add_argument("--sizes", default="200000,400000", help="corpus sizes in resources, comma separated")
    parser.add_argument("--resources", type=int, action="append", help="one corpus size (repeatable)")
    parser.add_argument("--format", choices=("bundles", "ndjson", "both"), default="bundles")
    parser.add_argument("--from", dest="source", metavar="DIR", help="replicate this corpus folder instead")
    parser.add_argument("--gzip", action="store_true", help="write the corpus as .gz files")
    parser.add_argument("--period", type=int, help="measurement year (default 2024 for the generated corpus)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--keep", metavar="DIR", help="write corpora and replay output here, and keep them")
    parser.add_argument("--check", action="store_true", help="exit 1 if replay is below 1/3 of parse-only")
    parser.add_argument("--parse-only", metavar="DIR", help=argparse.SUPPRESS)  # the baseline's child process
    args = parser.parse_args(argv)
    if args.parse_only:
        print(sum(count_resources(path, read_bytes(path)) for path in input_files(Path(args.parse_only))))
        return 0
    sizes = args.resources or [int(s) for s in args.sizes.split(",") if s.strip()]
    formats = ["from"] if args.source else ["bundles", "ndjson"] if args.format == "both" else [args.format]
    period = args.period or (None if args.source else 2024)
    compile_package()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"Python {platform.python_version()} on {platform.platform()}; {os.cpu_count()} CPUs"
        f" ({usable} usable); orjson {orjson.__version__}",
        flush=True,
    )
    rows: list[tuple[int, str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="fhir-cat2-bench-") as tmp:
        for size in sizes:
            root = Path(args.keep or tmp) / f"size-{size}"
            print(f"size {size}:", flush=True)
            if args.source:
                replicate(Path(args.source), root, size, args.seed, args.gzip)
            else:
                generate(root, size, formats, args.seed, args.gzip)
            rows += [(size, fmt, bench(root / fmt, root / f"work-{fmt}", period)) for fmt in formats]
            if not args.keep:
                shutil.rmtree(root)  # one size on disk at a time
    print(
        "\n"
        + ROW.format(
            "size",
            "format",
            "resources",
            "orjson res/s",
            "replay res/s",
            "ratio",
            "replay RSS MB",
            "orjson RSS MB",
            "orjson wall (cpu)",
            "replay wall (cpu)",
        )
    )
    for size, fmt, r in rows:
        print(
            ROW.format(
                size,
                fmt,
                int(r["resources"]),
                f"{r['base_rate']:,.0f}",
                f"{r['replay_rate']:,.0f}",
                f"{r['replay_rate'] / r['base_rate']:.3f}",
                f"{r['replay_rss']:.0f}",
                f"{r['base_rss']:.0f}",
                f"{r['base_s']:.1f}s ({r['base_cpu']:.1f}s)",
                f"{r['replay_s']:.1f}s ({r['replay_cpu']:.1f}s)",
            )
        )
    for fmt in formats:
        rss = [(int(r["resources"]), r["replay_rss"]) for _, f, r in rows if f == fmt]
        if len(rss) > 1:
            print(
                f"{fmt}: replay peak RSS {rss[0][1]:.0f} MB at {rss[0][0]} resources, {rss[-1][1]:.0f} MB"
                f" at {rss[-1][0]} (x{rss[-1][1] / rss[0][1]:.2f})"
            )
    slow = [f"{size}/{fmt}" for size, fmt, r in rows if r["replay_rate"] * 3 < r["base_rate"]]
    print("replay >= 1/3 of the parse-only rate: " + ("NO for " + ", ".join(slow) if slow else "yes"))
    return 1 if args.check and slow else 0


if __name__ == "__main__":
    sys.exit(main())
