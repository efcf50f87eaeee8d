"""The load generator's self-benchmark: how many deliveries one client core can take, against a
server that costs nothing (firehose.py), so that a run's figures are never the client's limit."""

from bench.harness.loadgen import main, run_harness, summary

__all__ = ["main", "run_harness", "summary"]
