"""Sync benchmark against a real server: a local sekmet-fhir (in-memory) filled with N synthetic patients.

Run by hand with the project's interpreter (it is not a test)::

    FHIR_CAT2_SEKMET_VENV=/path/to/venv .venv/bin/python benchmarks/sync_sekmet.py --patients 1000

Each patient: Patient, one office visit with a hypertension diagnosis, a BP panel and an HbA1c, plus a
diabetes diagnosis for every other patient (about 6 resources each). Measured, each as a separate
``fhir-cat2 sync`` child process: the first run (everything is new: read, compute, create), a rerun
(everything read again inside the overlap window, nothing written), and an incremental run after amending
1% of the BP readings.

``--source patients`` runs the same three with ``sync --source patients`` over a Group of all the patients
(``--concurrency``, ``--everything auto|always|never``)::

    .venv/bin/python benchmarks/sync_sekmet.py --patients 300 --source patients --concurrency 4
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.sekmet_server import SekmetServer  # noqa: E402

LOINC, ICD = "http://loinc.org", "http://hl7.org/fhir/sid/icd-10-cm"


def patient_resources(rng: random.Random, index: int) -> list[dict]:
    pid, eid = str(uuid.UUID(int=rng.getrandbits(128))), str(uuid.UUID(int=rng.getrandbits(128)))
    day = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    out = [
        {
            "resourceType": "Patient",
            "id": pid,
            "birthDate": f"19{rng.randint(45, 95)}-01-01",
            "gender": "female",
        },
        {
            "resourceType": "Encounter",
            "id": eid,
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [{"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99213"}]}],
            "subject": {"reference": f"Patient/{pid}"},
            "period": {"start": f"{day}T09:00:00Z", "end": f"{day}T09:30:00Z"},
        },
        {
            "resourceType": "Condition",
            "id": f"htn-{pid[:30]}",
            "code": {"coding": [{"system": ICD, "code": "I10"}]},
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "onsetDateTime": "2020-01-01",
        },
        {
            "resourceType": "Observation",
            "id": f"bp-{pid[:30]}",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "encounter": {"reference": f"Encounter/{eid}"},
            "effectiveDateTime": f"{day}T09:10:00Z",
            "component": [
                {
                    "code": {"coding": [{"system": LOINC, "code": c}]},
                    "valueQuantity": {
                        "value": v,
                        "unit": "mm[Hg]",
                        "system": "http://unitsofmeasure.org",
                        "code": "mm[Hg]",
                    },
                }
                for c, v in (("8480-6", rng.randint(110, 170)), ("8462-4", rng.randint(65, 100)))
            ],
        },
        {
            "resourceType": "Observation",
            "id": f"a1c-{pid[:30]}",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "laboratory",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": LOINC, "code": "4548-4"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "encounter": {"reference": f"Encounter/{eid}"},
            "effectiveDateTime": f"{day}T09:05:00Z",
            "valueQuantity": {
                "value": round(rng.uniform(5.5, 11.0), 1),
                "unit": "%",
                "system": "http://unitsofmeasure.org",
                "code": "%",
            },
        },
    ]
    if index % 2:
        out.append(
            {
                "resourceType": "Condition",
                "id": f"dm-{pid[:30]}",
                "code": {"coding": [{"system": ICD, "code": "E11.9"}]},
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "subject": {"reference": f"Patient/{pid}"},
                "onsetDateTime": "2019-01-01",
            }
        )
    return out


def load(base: str, resources: list[dict]) -> None:
    for start in range(0, len(resources), 1000):
        entries = [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources[start : start + 1000]
        ]
        response = requests.post(
            base, json={"resourceType": "Bundle", "type": "transaction", "entry": entries}, timeout=300
        )
        response.raise_for_status()


def timed_sync(base: str, work: Path, name: str, extra: list[str], env: dict[str, str]) -> tuple[float, dict]:
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fhir_cat2",
            "sync",
            "--base-url",
            base,
            "--state",
            str(work / "state.sqlite"),
            "--out",
            str(work / name),
            "--period",
            "2025",
            *extra,
        ],
        check=False,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    return time.monotonic() - started, json.loads((work / name / "run-report.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--source", choices=("search", "patients"), default="search")
    parser.add_argument("--concurrency", type=int, default=4, help="patients mode: patients at a time")
    parser.add_argument("--everything", choices=("auto", "always", "never"), default="auto")
    parser.add_argument(
        "--overlap-minutes",
        type=float,
        default=5.0,
        help="sync.overlap_minutes (0: a rerun reads only what changed after the last run)",
    )
    args = parser.parse_args()
    extra: list[str] = []
    env: dict[str, str] = {"FHIR_CAT2_SYNC__OVERLAP_MINUTES": str(args.overlap_minutes)}
    if args.source == "patients":
        extra = ["--source", "patients", "--group", "bench"]
        env["FHIR_CAT2_SOURCE__PATIENTS__CONCURRENCY"] = str(args.concurrency)
        env["FHIR_CAT2_SOURCE__PATIENTS__EVERYTHING"] = args.everything
    rng = random.Random(20250101)
    resources = [r for i in range(args.patients) for r in patient_resources(rng, i)]
    with SekmetServer(settings={"log_inbound": False}) as server, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.monotonic()
        load(server.base_url, resources)
        members = [
            {"entity": {"reference": f"Patient/{r['id']}"}}
            for r in resources
            if r["resourceType"] == "Patient"
        ]
        group = {"resourceType": "Group", "id": "bench", "type": "person", "actual": True, "member": members}
        load(server.base_url, [group])
        time.sleep(1.1)  # patients mode's until is a whole-second Date header: let the load's second pass
        print(
            f"loaded {len(resources)} resources for {args.patients} patients"
            f" in {time.monotonic() - started:.1f}s"
        )
        for name in ("first", "rerun"):
            seconds, report = timed_sync(server.base_url, work, name, extra, env)
            print(
                f"{name:>11}: {seconds:6.1f}s  {report['resources_read']:>7} resources read"
                f" ({report['resources_read'] / seconds:,.0f}/s), {report['requests']} requests,"
                f" write-back {report.get('write_back')}"
            )
        amended = [r for r in resources if r["id"].startswith("bp-")][: max(1, args.patients // 100)]
        for reading in amended:
            reading["component"][0]["valueQuantity"]["value"] = 200
        load(server.base_url, amended)
        time.sleep(1.1)  # past the second of these writes (patients mode's until is a whole-second Date)
        seconds, report = timed_sync(server.base_url, work, "incremental", extra, env)
        print(
            f"incremental: {seconds:6.1f}s  {report['patients_affected']} patients affected,"
            f" {report['requests']} requests,"
            f" write-back {report.get('write_back')}"
        )


if __name__ == "__main__":
    main()
