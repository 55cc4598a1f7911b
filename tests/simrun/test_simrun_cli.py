"""`memlat run` and `memlat sweep` end to end: table, report folder, Parquet table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image
from typer.testing import CliRunner

from memlat.cli import app
from memlat.sim.batch import limit_duration
from memlat.sim.policies import POLICIES
from memlat.sim.workload import load_suite

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("simrun") / "report"
    result = CliRunner().invoke(app, ["run", "--duration", "0.4", "--only", "membench,video",
                                      "--out", str(out), "--jobs", "1", "--seed", "3"])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_run_prints_a_table_per_workload_and_policy(report: tuple[Path, str]) -> None:
    _, output = report
    for header in ("time s", "slowdown", "E cpu J", "E ddr J", "E llcc J", "EDP J*s",
                   "trans ddr"):
        assert header in output
    for name in ("membench", "video", *POLICIES):
        assert name in output


def test_run_writes_results_json(report: tuple[Path, str]) -> None:
    out, _ = report
    doc = json.loads((out / "results.json").read_text())
    rows = doc["results"]
    assert {(r["workload"], r["policy"]) for r in rows} == {
        (w, p) for w in ("membench", "video") for p in POLICIES}
    assert doc["settings"]["seed"] == 3
    for r in rows:
        assert r["energy_j"] == pytest.approx(r["energy_cpu_j"] + r["energy_ddr_j"]
                                              + r["energy_llcc_j"])
        assert r["edp_js"] == pytest.approx(r["energy_j"] * r["time_s"])
        if r["policy"] == "performance":
            assert r["slowdown"] == 1.0
    assert set(doc["oracle_frontier"]) == {"membench", "video"}


def test_run_writes_matplotlib_pngs(report: tuple[Path, str]) -> None:
    out, _ = report
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == ["busfreq_membench.png", "busfreq_video.png",
                                      "energy_vs_slowdown.png", "overview.png"]
    for path in pngs:
        assert path.read_bytes()[:8] == PNG_MAGIC
        with Image.open(path) as img:
            assert "Matplotlib" in img.info.get("Software", "")
            pixels = np.asarray(img.convert("RGB"))
        assert pixels.shape[0] > 300 and pixels.shape[1] > 600
        # rendered content: many colours, not a blank canvas
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50


def test_run_writes_trans_stat_per_bus(report: tuple[Path, str]) -> None:
    out, _ = report
    for workload in ("membench", "video"):
        for bus, ladder in (("ddr", 10), ("llcc", 6)):
            text = (out / "trans_stat" / workload / bus).read_text()
            lines = text.splitlines()
            assert lines[0] == "     From  :   To"
            assert lines[-1].startswith("Total transition : ")
            assert len(lines) == 2 + ladder + 1
            assert sum(line.startswith("*") for line in lines) == 1  # the current OPP


def test_run_rejects_unknown_policy(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--policies", "memlat,turbo", "--out",
                                      str(tmp_path / "r")])
    assert result.exit_code != 0
    assert "turbo" in result.output


def test_limit_duration_keeps_every_phase() -> None:
    wl = load_suite()["mobile_ui"]
    short = limit_duration(wl, 1.0)
    assert [p.name for p in short.phases] == [p.name for p in wl.phases]
    assert sum(p.duration_s * p.repeat for p in short.phases) == pytest.approx(1.0, rel=0.05)
    assert limit_duration(wl, 1000.0) is wl


def test_sweep_writes_one_row_per_grid_point_and_workload(tmp_path: Path) -> None:
    out = tmp_path / "sweep.parquet"
    result = CliRunner().invoke(app, ["sweep", "--only", "mcf,video", "--map-scale", "0.5,1",
                                      "--ipm-ceil", "400,20000000", "--duration", "0.3",
                                      "--jobs", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    df = pl.read_parquet(out)
    assert df.height == 2 * 2 * 2
    assert df.select("map_scale", "ipm_ceil", "workload").unique().height == 8
    assert set(df["policy"]) == {"memlat"}
    assert df["slowdown"].min() >= 0.999
    # halving the maps slows the latency-bound mcf down at the 20M ceiling
    mcf = df.filter((pl.col("workload") == "mcf") & (pl.col("ipm_ceil") == 20_000_000))
    by_scale = dict(zip(mcf["map_scale"], mcf["slowdown"], strict=True))
    assert by_scale[0.5] > by_scale[1.0]


def test_sweep_dask_backend_matches_processes() -> None:
    pytest.importorskip("dask.distributed", reason="the optional extra memlat[dask]")
    from memlat.analysis.sweep import Grid, SweepSpec, run_sweep

    spec = SweepSpec(Grid(map_scale=[0.5, 1.0]), [limit_duration(load_suite()["mcf"], 0.3)])
    local = run_sweep(spec, backend="processes", workers=1)
    dask = run_sweep(spec, backend="dask", workers=1)
    assert local.height == dask.height == 2
    assert local["energy_j"].to_list() == dask["energy_j"].to_list()
