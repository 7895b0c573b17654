"""Benchmarks: `make bench` or `python -m bench [NAME ...]`; results in BENCHMARKS.md."""
