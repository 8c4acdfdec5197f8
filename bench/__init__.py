"""Benchmarks for issue 6: cold start, per-request overhead, SQS batches and bulk sends.

Run with `python -m bench` (or `make bench`); `--smoke` runs tiny sizes for CI.
Results go to bench/results/latest.json (git-ignored).
"""
