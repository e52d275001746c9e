"""Executors: ways to run ingest -> core -> sink. In-process is ``fhir_cat2.pipeline.Pipeline``; forked
workers are ``fhir_cat2.executors.forked``; Apache Spark is ``fhir_cat2.spark``."""
