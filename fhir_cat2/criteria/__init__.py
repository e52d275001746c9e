"""The criteria core: what code rules and measures are built from.

``plan`` compiles a criterion of the rules table into a plan (once per run), ``judge`` judges plans against
one patient's facts (``facts``), and ``words`` writes why, only when something reads it. Field accessors are
properties of the records (``sources/records.py``), but for when a record applies (``spans``).
Nothing here knows of measures or code rules: they sit on top.
"""
