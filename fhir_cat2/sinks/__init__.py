"""Sinks: where emitted resources go (files, servers)."""
