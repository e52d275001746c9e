"""The test Spark session itself: it runs Python on the workers with this interpreter, in UTC."""

from __future__ import annotations

from .conftest import SPARK_MARKS

pytestmark = SPARK_MARKS


def test_local_session_runs_arrow_python_on_workers(spark):
    import pyarrow as pa

    def double(batches):
        for batch in batches:
            yield pa.RecordBatch.from_arrays([pa.compute.multiply(batch.column(0), 2)], names=["n"])

    rows = spark.range(5).toDF("n").mapInArrow(double, "n long").collect()
    assert sorted(r.n for r in rows) == [0, 2, 4, 6, 8]
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "4"


def test_missing_pyspark_skips_and_fails_when_spark_is_required(monkeypatch):
    import importlib.util

    import pytest

    from . import conftest

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real_find_spec(name, *a)
    )
    monkeypatch.delenv(conftest.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="pyspark is not installed"):
        conftest.skip_or_fail_without_spark()
    monkeypatch.setenv(conftest.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="FHIR_CAT2_REQUIRE_SPARK=1 but Spark cannot run"):
        conftest.skip_or_fail_without_spark()


def test_missing_java_is_named(monkeypatch, tmp_path):
    from . import conftest

    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "no Java runtime" in (conftest.spark_missing() or "")
