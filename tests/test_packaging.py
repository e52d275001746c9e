"""Packaging: the declared license has its file and a build backend that reads it; `fhir-cat2 --version`."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version

import pytest
from packaging.requirements import Requirement

import fhir_cat2
from fhir_cat2.cli import main

from .conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_license_file_holds_the_declared_license():
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text  # the full text, not the terms cut short


def test_the_build_backend_reads_an_spdx_license_expression():
    # setuptools < 77 refuses `license = "Apache-2.0"` (PEP 639); 77.0.0 was yanked, 77.0.1 builds
    requires = PYPROJECT["build-system"]["requires"]
    [setuptools] = [Requirement(r) for r in requires if r.startswith("setuptools")]
    assert not setuptools.specifier.contains("76.1.0") and not setuptools.specifier.contains("77.0.0")
    assert setuptools.specifier.contains("77.0.1")


def test_version_flag_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"fhir-cat2 {PYPROJECT['project']['version']}\n"
    assert fhir_cat2.__version__ == version("fhir-cat2") == PYPROJECT["project"]["version"]


def test_ci_runs_exactly_the_readmes_test_command_with_linters_pinned():
    readme = (ROOT / "README.md").read_text()
    [command] = [b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if "pytest" in b]
    script = (ROOT / ".ci" / "run").read_text()
    assert script.endswith("\n" + command)
    for step in ("ruff check", "ruff format --check", "mypy --strict fhir_cat2", "python -m pytest"):
        assert step in command, step
    pins = {
        Requirement(r).name: Requirement(r).specifier
        for r in PYPROJECT["project"]["optional-dependencies"]["test"]
    }
    for tool in ("ruff", "mypy", "types-PyYAML", "types-requests"):
        assert str(pins[tool]).startswith("=="), tool


def test_spark_is_its_own_extra_and_ci_installs_it_with_java():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert not any(Requirement(r).name == "pyspark" for r in extras["test"])  # `.[test]` stays Spark-free
    spark = {Requirement(r).name: Requirement(r).specifier for r in extras["spark"]}
    assert spark["pyspark"].contains("3.5.0") and spark["pyspark"].contains("4.0.5")
    assert not spark["pyspark"].contains("4.1.0")
    assert spark["pandas"].contains("2.0.0") and spark["pyarrow"].contains("11.0.0")
    script = (ROOT / ".ci" / "run").read_text()
    assert "'.[test,spark]'" in script and "FHIR_CAT2_REQUIRE_SPARK=1" in script
    assert "openjdk-17-jre-headless" in script
    assert "spark" in " ".join(PYPROJECT["tool"]["pytest"]["ini_options"]["markers"])


def test_ci_installs_chromium_for_the_browser_tests_and_requires_it():
    script = (ROOT / ".ci" / "run").read_text()
    assert "apt-get install -y -qq chromium" in script
    assert "FHIR_CAT2_REQUIRE_CHROMIUM=1" in script
