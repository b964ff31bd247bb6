"""A small version of the load benchmark (benchmarks/load.py): two sessions for a few seconds."""

from __future__ import annotations

from benchmarks.load import run


def test_two_sessions_on_generate_and_round_trip_without_errors(server):
    result = run(sessions=2, seconds=5, url=server.base, model="e2e_mlp_vae")
    assert result["errors"] == 0, result["error_samples"]
    assert result["page_load"]["n"] == 2
    assert result["interactions"] >= 2
    assert result["latency"]["p95_ms"] > 0
