"""A local Spark session for the Spark executor's tests.

The tests skip, saying why, when PySpark or a Java runtime is missing (a developer without them runs the
rest of the suite); ``FHIR_CAT2_REQUIRE_SPARK=1`` (set by ``.ci/run``) turns that skip into a failure, so
CI cannot go green by running none of them."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REQUIRE_ENV = "FHIR_CAT2_REQUIRE_SPARK"

SPARK_MARKS = [
    pytest.mark.spark,
    # PySpark's driver leaves the local sockets it collects results through to the garbage collector
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]
"""``pytestmark`` of every module that uses the ``spark`` fixture."""


def spark_missing() -> str | None:
    """Why Spark cannot run here, or None."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install -e '.[test,spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and Path(java_home, "bin", "java").exists()) and shutil.which("java") is None:
        return "no Java runtime (install openjdk-17-jre-headless or set JAVA_HOME)"
    return None


def skip_or_fail_without_spark() -> None:
    reason = spark_missing()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but Spark cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="package")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One SparkSession for the Spark tests: local[2], 4 shuffle partitions, no UI, UTC, temp dirs.

    Package scope, not session: it is stopped, and its Java gateway shut down, as soon as the Spark tests
    are done. py4j's finalizer thread polls with ``time.sleep(1)`` for as long as the gateway lives, and
    the tests that record ``time.sleep`` calls (retry waits) would record its calls too."""
    skip_or_fail_without_spark()
    from pyspark.sql import SparkSession

    base = tmp_path_factory.mktemp("spark")
    # the Python workers must be this interpreter (the venv with fhir_cat2 in it), not a `python3` on PATH
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("fhir-cat2-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(base / "warehouse"))
        .config("spark.local.dir", str(base / "local"))
        .config(
            "spark.driver.extraJavaOptions", f"-Djava.io.tmpdir={base / 'tmp'} -Dderby.system.home={base}"
        )
        .getOrCreate()
    )
    (base / "tmp").mkdir(exist_ok=True)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    _shut_down_gateway()


def _shut_down_gateway() -> None:
    """End the JVM and py4j's threads (``SparkSession.stop`` keeps the gateway for a next session)."""
    import threading

    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is None:
        return
    gateway.shutdown()
    SparkContext._gateway = None
    SparkContext._jvm = None
    jvm = getattr(gateway, "proc", None)  # the JVM PySpark started; it exits when its stdin closes
    if jvm is not None:
        if jvm.stdin is not None:
            jvm.stdin.close()
        try:
            jvm.wait(timeout=30)
        except subprocess.TimeoutExpired:
            jvm.kill()
            jvm.wait()
    for thread in threading.enumerate():
        if type(thread).__name__ == "FinalizerWorker":
            thread.join(timeout=5)  # it sees the shutdown after its current one-second sleep
