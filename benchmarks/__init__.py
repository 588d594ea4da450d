"""Benchmarks of the connector against its alternatives: `python benchmarks/run.py`.

One module per section (credits, overhead, coldstart, scale, state), each with a `run(quick)`
that measures and returns a report.Section; run.py prints them and writes BENCHMARKS.md.
"""
