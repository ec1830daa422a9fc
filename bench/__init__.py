"""Benchmarks of the service: ingestion and query speed as ratios to the engine's own floor.

`python -m bench --help` lists the parts; `make bench` runs them all. Not tests: nothing here
fails a build, and CI never runs it. See docs/performance.md.
"""
