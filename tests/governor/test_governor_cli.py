"""`memlat replay` and `memlat trace` through typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hamoa import hamoa_config
from typer.testing import CliRunner

from memlat.cli import app
from memlat.governor.engine import run_trace
from memlat.traces import read_trace, synth_trace, write_trace

runner = CliRunner()


@pytest.fixture
def hand_built_soc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay against the hand-built x1e80100 config, independent of the profile layer."""
    monkeypatch.setattr("memlat.analysis.replay.governor_config_for_soc",
                        lambda name: hamoa_config())


def test_replay_writes_window_group_khz(tmp_path: Path, hand_built_soc: None) -> None:
    trace = synth_trace(50, 12, seed=21)
    src = tmp_path / "t.parquet"
    write_trace(trace, src)
    out = tmp_path / "votes.csv"
    res = runner.invoke(app, ["replay", "--soc", "x1e80100", "--trace", str(src),
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    df = pl.read_csv(out)
    assert df.columns == ["window", "group", "khz"]
    assert df.height == 150
    assert df["group"][:3].to_list() == ["ddr", "llcc", "ddr_qos"]
    expected = run_trace(hamoa_config(), trace).group_votes
    assert np.array_equal(df["khz"].to_numpy().reshape(50, 3), expected)
    assert set(df.filter(pl.col("group") == "ddr_qos")["khz"].to_list()) <= {0, 1}


def test_replay_reports_bad_trace(tmp_path: Path, hand_built_soc: None) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("window,cpu,dt_us,ev0,ev2\n0,0,4000,1,1\n")
    res = runner.invoke(app, ["replay", "--trace", str(src), "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 2
    assert "bad.csv:column ev5" in res.output


def test_replay_with_profile_layer(tmp_path: Path) -> None:
    """The profile probed into an emulated CPUCP gives the hand-built Hamoa config."""
    from memlat.analysis.replay import governor_config_for_soc

    cfg = governor_config_for_soc("x1e80100")
    trace = synth_trace(200, 12, seed=4)
    assert np.array_equal(run_trace(cfg, trace).group_votes,
                          run_trace(hamoa_config(), trace).group_votes)


def test_trace_synth_and_convert(tmp_path: Path) -> None:
    csv = tmp_path / "s.csv"
    res = runner.invoke(app, ["trace", "synth", str(csv), "--windows", "20", "--cpus", "4",
                              "--seed", "3"])
    assert res.exit_code == 0, res.output
    pq = tmp_path / "s.parquet"
    res = runner.invoke(app, ["trace", "convert", str(csv), str(pq)])
    assert res.exit_code == 0, res.output
    assert np.array_equal(read_trace(pq).deltas, synth_trace(20, 4, seed=3).deltas)
    res = runner.invoke(app, ["trace", "check", str(pq), "--ncpus", "2"])
    assert res.exit_code == 2
    assert "column cpu" in res.output


def test_trace_convert_perf(tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    sample = Path(__file__).parent / "data" / "perf_stat_sample.csv"
    res = runner.invoke(app, ["trace", "convert", str(sample), str(out)])
    assert res.exit_code == 0, res.output
    df = pl.read_csv(out)
    assert df["dt_us"].to_list() == [4012, 4012, 4013, 4013]
    assert df["ev5"].to_list() == [6018, 0, 0, 1000]
