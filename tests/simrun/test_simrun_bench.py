"""`memlat bench --suite sim` reports the figures issue 13 names (no timing asserts)."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_sim_bench_quick_reports_figures() -> None:
    from memlat.bench.sim import run

    figures = run(quick=True)
    for key in ("closed_loop_windows_per_s", "closed_loop_windows_per_cpu_s",
                "closed_loop_python_windows_per_s", "closed_loop_compiled_vs_python_ratio",
                "closed_loop_performance_windows_per_s", "memlat_probe_ms", "hour_wall_s",
                "hour_cpu_s", "hour_peak_rss_mib", "memlat_run_s", "memlat_run_cpu_s",
                "memlat_help_s"):
        assert figures[key] > 0, key
    assert figures["hour_firmware_s"] == pytest.approx(60.0, rel=0.05)
    assert figures["hour_windows"] >= 60_000 / 4  # one window per 4 ms sample period
