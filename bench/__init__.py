"""Benchmarks of the alert service on the embedded local stack. `python -m bench.run` (or `make bench`) runs them all
and writes BENCHMARKS.md; `BENCH_QUICK=1` is the short mode CI runs (written under artifacts/bench-quick/)."""
