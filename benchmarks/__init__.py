"""Benchmarks: accuracy against the sample generator's truth, and speed. Run with ``make bench``."""
