"""Benchmark suites: one per table/figure of the paper, each with smoke / demo / paper profiles."""
