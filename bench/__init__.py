"""Benchmark harness: `make bench` / `make bench-quick` (see README, Performance)."""
