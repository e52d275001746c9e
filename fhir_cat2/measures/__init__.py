"""Measure definitions evaluated per patient and period."""
