"""`memlat bench --suite governor` reports the figures its issue names (no timing asserts)."""

from __future__ import annotations


def test_bench_quick_reports_figures() -> None:
    from memlat.bench.governor import run

    figures = run(quick=True)
    for key in ("engine_cpu_samples_per_s", "reference_cpu_samples_per_s",
                "engine_vs_reference_ratio", "bare_read_ratio"):
        assert figures[key] > 0, key
    assert figures["governor_cpu_samples"] == 8_334 * 12
    if "numba_cpu_samples_per_s" in figures:
        assert figures["numba_matches_engine"] is True
