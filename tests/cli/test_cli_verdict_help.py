"""The verdict's arithmetic on hand-made results, the plots' visibility rules, help text,
and the bench/sweep tables."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest
from rich.console import Console

from memlat.analysis.report import _binned, _fit_label, _spread
from memlat.analysis.verdict import compute_verdict
from memlat.cli import run_cli
from memlat.cli.bench import flatten
from memlat.cli.sweep import sweep_table
from memlat.sim.results import RunResult


def _r(workload: str, policy: str, time_s: float, cpu: float, ddr: float,
       llcc: float) -> RunResult:
    return RunResult(workload, policy, "x1e80100", time_s, cpu, ddr, llcc, {}, 10)


def test_verdict_sums_energy_and_takes_the_geometric_mean_of_slowdowns() -> None:
    results = [
        _r("a", "performance", 1.0, 6.0, 3.0, 1.0), _r("a", "memlat", 1.0, 6.0, 1.5, 0.5),
        _r("a", "oracle", 1.0, 6.0, 1.0, 0.5), _r("a", "static-map", 1.0, 6.0, 1.0, 0.4),
        _r("b", "performance", 2.0, 8.0, 1.0, 1.0), _r("b", "memlat", 2.42, 9.0, 1.0, 1.0),
        _r("b", "oracle", 2.0, 8.0, 0.5, 0.5), _r("b", "static-map", 2.0, 8.0, 1.0, 1.0),
    ]
    v = compute_verdict(results, budget=0.05)
    memlat = v.suite["memlat"]
    # energy: (8 + 11) / (10 + 10) - 1 = -5 %; DDR (1.5 + 1) / (3 + 1) - 1 = -37.5 %
    assert memlat.energy_pct == pytest.approx(-5.0)
    assert memlat.bus_pct["ddr"] == pytest.approx(-37.5)
    assert memlat.bus_pct["cpu"] == pytest.approx((15 / 14 - 1) * 100)
    # slowdown: sqrt(1.0 * 1.21) - 1 = 10 %; worst is b at 21 %
    assert memlat.slowdown_pct == pytest.approx(10.0)
    assert v.worst["memlat"] == ("b", pytest.approx(21.0))
    # vs oracle: 19 / (7.5 + 9) - 1
    assert memlat.oracle_gap_pct == pytest.approx((19 / 16.5 - 1) * 100)
    assert v.cells[("a", "memlat")].energy_pct == pytest.approx(-20.0)
    # loses on a (static-map 7.4 J < 8 J at the same time) and b (21 % > 5 % budget)
    assert [w for w, _ in v.losses] == ["a", "b"]
    assert "static-map uses 7.5 % less energy" in v.losses[0][1]
    assert "21.0 % slower than performance (budget 5 %)" in v.losses[1][1]
    assert v.headline.startswith("memlat uses 5.0 % less energy than performance over the "
                                 "2 workloads (CPUs +7.1 %, DDR -37.5 %, LLCC -25.0 %)")
    assert "It loses on 2 of 2" in v.headline


def test_verdict_without_a_baseline_says_so() -> None:
    v = compute_verdict([_r("a", "memlat", 1.0, 1.0, 1.0, 1.0)])
    assert v.suite == {} and v.headline.startswith("No verdict")


def test_coinciding_markers_are_spread_and_lone_ones_stay() -> None:
    offsets = _spread([(0.5, 0.5), (0.5, 0.5), (0.51, 0.5), (0.9, 0.1)])
    assert offsets[3] == 0.0
    assert sorted(offsets[:3]) == [-10.0, 0.0, 10.0]


def test_dense_switching_is_binned_to_mean_and_range() -> None:
    edges = np.arange(0, 101, dtype=float)  # 100 windows of 1 s
    y = np.where(np.arange(100) % 2 == 0, 100.0, 300.0)  # a frame workload's flicker
    bins, lo, hi, mean = _binned(edges, y, 10)
    assert len(bins) == 11 and np.all(lo == 100) and np.all(hi == 300)
    assert np.allclose(mean, 200.0)


def test_phase_labels_shorten_to_fit() -> None:
    assert _fit_label("gameplay", 20) == "gameplay"
    assert _fit_label("build+events+timestep", 8) == "build+e…"
    assert _fit_label("build+events", 3) is None


def _help(capfd: pytest.CaptureFixture[str], *argv: str) -> str:
    assert run_cli([*argv, "--help"]) == 0
    return capfd.readouterr().out


@pytest.mark.parametrize("argv", [(), ("run",), ("bench",), ("sweep",), ("probe",),
                                  ("trace", "synth"), ("platform", "serve"),
                                  ("devfreq", "show"), ("soc", "show")])
def test_help_shows_no_bool_metavar(argv: tuple[str, ...],
                                    capfd: pytest.CaptureFixture[str]) -> None:
    text = _help(capfd, *argv)
    assert "--help" in text and "<bool>" not in text


def test_bench_help_lists_the_suites(capfd: pytest.CaptureFixture[str]) -> None:
    text = _help(capfd, "bench")
    assert "governor|transports|sim" in text and "<list[str]>" not in text


def test_trace_synth_options_all_have_descriptions(capfd: pytest.CaptureFixture[str]) -> None:
    text = re.sub(r"\s+", " ", _help(capfd, "trace", "synth"))
    for option, words in (("--windows", "Sampling windows"), ("--cpus", "CPUs per window"),
                          ("--seed", "Seed of the random generator"),
                          ("--dt-us", "Length of one window"),
                          ("--zero-miss", "no cache misses")):
        assert option in text and words in text, option


def test_bench_table_flattens_nested_figures() -> None:
    rows = flatten({"b": 1.5, "transports": {"unix": {"roundtrips_per_s": 12000}}, "a": True})
    assert rows == [("a", True), ("b", 1.5), ("transports.unix.roundtrips_per_s", 12000)]


def test_sweep_table_shows_every_row_and_column() -> None:
    df = pl.DataFrame({"ipm_ceil": [None, 400] * 20, "map_scale": [0.5, 1.0] * 20,
                       "sample_ms": [None] * 40, "boost_pct": [None] * 40,
                       "workload": [f"w{i}" for i in range(40)], "policy": ["memlat"] * 40,
                       "time_s": [1.0] * 40, "slowdown": [1.01] * 40, "energy_j": [2.0] * 40,
                       "edp_js": [2.0] * 40, "transitions_ddr": [3] * 40,
                       "transitions_llcc": [4] * 40})
    console = Console(width=160, record=True)
    console.print(sweep_table(df))
    text = console.export_text()
    assert all(f" w{i} " in text for i in range(40))  # no truncation of rows
    for header in ("ipm_ceil", "map_scale", "slowdown", "energy_j", "edp_js", "trans llcc"):
        assert header in text
    assert "…" not in text
