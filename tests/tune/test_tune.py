"""memlat tune: candidates, pruning, folds, reproducibility and the three exports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memlat.agent.offline import programmed_governor
from memlat.agent.probe import probe
from memlat.agent.session import make_agent
from memlat.analysis.tune import (
    ALL_KNOBS,
    TuneOptions,
    _Context,
    _evaluate,
    apply,
    split_folds,
    stock_params,
    tune,
)
from memlat.analysis.tune_export import (
    command_changes,
    dt_overlay,
    profile_yaml,
)
from memlat.cli import app
from memlat.config import load_profile
from memlat.config.profiles import load_profile_file
from memlat.cpucp.boot import make_cpucp_platform
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import PROTOCOL_ID
from memlat.scmi.status import Status
from memlat.sim.batch import select_workloads
from memlat.transports.inproc import InProcessTransport

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "memlat" / "examples"
PARAMS = {"ddr.ipm_ceil": 400, "ddr.map_scale": 0.6, "llcc.be_stall_floor": 20,
          "sample_ms": 8, "ddr.freq_scale_pct": 50, "ddr.freq_scale_floor_mhz": 1000}


def test_stock_params_reproduce_the_stock_configuration() -> None:
    stock = load_profile("x1e80100")
    assert apply(stock, stock_params(stock, ALL_KNOBS)) == stock


def test_map_scale_snaps_to_the_ladder_and_keeps_cpu_rows() -> None:
    stock = load_profile("x1e80100")
    tuned = apply(stock, {"ddr.map_scale": 0.6})
    ddr = tuned.group("ddr")
    opps = {khz // 1000 for khz in ddr.ladder}
    for m_stock, m_tuned in zip(stock.group("ddr").monitors, ddr.monitors, strict=True):
        assert [r[0] for r in m_tuned.map] == [r[0] for r in m_stock.map]
        assert all(mem in opps for _, mem in m_tuned.map)
        if not m_tuned.compute:
            assert all(new >= 0.6 * old - 1e-9 for (_, new), (_, old)
                       in zip(m_tuned.map, m_stock.map, strict=True))


def test_a_candidate_the_configuration_refuses_is_pruned_with_its_reason() -> None:
    ctx = _Context("x1e80100", 0, 0.05, ())
    kind, why = _evaluate((ctx, {"ddr.ipm_ceil": 0}, ()))
    assert kind == "pruned"
    assert "ipm_ceil" in str(why)


def test_a_candidate_the_firmware_refuses_is_pruned_with_the_status(tmp_path: Path) -> None:
    """rfc2024 keeps a non-ascending map for wire fidelity (protocol.md §5.13); the
    emulated firmware refuses it, so the candidate never reaches the simulator."""
    data = load_profile("x1e80100").model_dump(mode="json")
    data["dialect"] = "rfc2024"
    for g in data["groups"]:
        for m in g["monitors"]:
            m["map"] = m["map"][:6]
    rows = data["groups"][0]["monitors"][0]["map"]
    rows[1], rows[2] = rows[2], rows[1]
    path = tmp_path / "unsorted.yaml"
    path.write_text(json.dumps(data))
    ctx = _Context(str(path), 0, 0.05, ())
    kind, why = _evaluate((ctx, {}, ()))
    assert kind == "pruned"
    assert "INVALID_PARAMETERS" in str(why) and "MON_FREQ_MAP" in str(why)


def test_folds_partition_the_workloads_deterministically() -> None:
    names = ["a", "b", "c", "d", "e"]
    folds = split_folds(names, 3, seed=1)
    assert folds == split_folds(names, 3, seed=1)
    held = [w for _, h in folds for w in h]
    assert sorted(held) == names
    for train, h in folds:
        assert not set(train) & set(h) and sorted(train + h) == names
    assert split_folds(["a"], 3, 0) == [] and split_folds(names, 1, 0) == []


def _small_tune(workers: int, storage: str | None = None, trials: int = 6):
    chosen = select_workloads(None, "video,compute", 0.15)
    opts = TuneOptions(soc="x1e80100", trials=trials, seed=7, workers=workers, folds=2,
                       batch=3, storage=storage, knobs=("ipm_ceil", "map_scale"))
    return tune(opts, chosen)


def _trials(result):
    return [(t.number, t.state.name, t.params, t.values) for t in result.final.trials]


def test_a_seeded_tune_is_reproducible_and_independent_of_workers() -> None:
    one = _small_tune(workers=1)
    again = _small_tune(workers=1)
    two = _small_tune(workers=2)
    assert _trials(one) == _trials(again) == _trials(two)
    assert len(one.final.trials) == 6 and len(one.folds) == 2
    # the stock configuration is candidate 0, so the chosen one is never worse than stock
    first = one.final.trials[0]
    assert first.params == stock_params(one.stock, ("ipm_ceil", "map_scale"))
    assert one.final.best is not None
    assert one.final.best.values[0] <= first.values[0] + 1e-12


def test_a_tune_resumes_from_its_storage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    first = _small_tune(workers=1, storage=url, trials=3)
    resumed = _small_tune(workers=1, storage=url, trials=6)
    assert len(first.final.trials) == 3 and len(resumed.final.trials) == 6
    assert _trials(resumed)[:3] == _trials(first)


def test_exports_reproduce_the_tuned_configuration(tmp_path: Path) -> None:
    """Profile YAML, DT overlay and SCMI command list each give the tuned firmware state."""
    stock = load_profile("x1e80100")
    tuned = apply(stock, PARAMS)
    want = programmed_governor(tuned)
    # 1. the profile YAML
    (tmp_path / "t.yaml").write_text(profile_yaml(tuned, comment="test"))
    assert load_profile_file(tmp_path / "t.yaml") == tuned
    # 2. the overlay on the shipped board tree, loaded by `memlat probe --dts`
    for name in ("x1e80100-crd-memlat.dts", "x1e80100-memlat.dtsi"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    board = tmp_path / "x1e80100-crd-memlat.dts"
    overlay = dt_overlay(stock, tuned, board)
    tuned_dts = tmp_path / "tuned.dts"
    tuned_dts.write_text(board.read_text() + "\n" + overlay)
    runner = CliRunner()
    via_dt = runner.invoke(app, ["probe", "--dts", str(tuned_dts), "--json"])
    via_yaml = runner.invoke(app, ["probe", "--soc", str(tmp_path / "t.yaml"), "--json"])
    assert via_dt.exit_code == 0, via_dt.output
    assert via_dt.stdout == via_yaml.stdout
    # 3. the stock probe, then only the changed SET_PARAM commands, as a driver would
    changes = command_changes(stock, tuned)
    assert changes and all(c.message.param != "START_TIMER" for c in changes)
    platform, service = make_cpucp_platform(stock.hardware())
    agent = make_agent(InProcessTransport(platform), Dialect.V8)
    assert probe(agent, stock).ok
    for c in changes:
        reply = agent.xfer(PROTOCOL_ID, c.message.message_id, c.message.payload, rx_size=0)
        assert reply.status == Status.SUCCESS, c.describe(Dialect.V8)
    assert service.governor_config() == want


def test_tune_cli_writes_every_output_and_the_profile_reproduces_the_run(tmp_path: Path
                                                                         ) -> None:
    out = tmp_path / "out"
    args = ["tune", "--only", "video,compute", "--duration", "0.15", "--trials", "4",
            "--folds", "1", "--batch", "2", "--knobs", "ipm_ceil,map_scale", "--seed", "3",
            "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    names = {p.name for p in out.iterdir()}
    assert {"summary.md", "tune.json", "pareto.csv", "pareto.png", "tuned-profile.yaml",
            "scmi-commands.txt", "tuned-overlay.dtsi"} <= names
    summary = json.loads((out / "tune.json").read_text())
    best = summary["best"]
    assert best is not None and summary["trials"] == 4
    # feed the profile back to `memlat run`: the same energy as the chosen trial
    run_out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", "--soc", str(out / "tuned-profile.yaml"),
                                   "--only", "video,compute", "--duration", "0.15",
                                   "--policies", "memlat", "--seed", "3",
                                   "--out", str(run_out)])
    assert res.exit_code == 0, res.output
    ran = json.loads((run_out / "results.json").read_text())
    rows = ran["results"] if isinstance(ran, dict) else ran
    energy = sum(r["energy_j"] for r in rows if r["policy"] == "memlat")
    assert energy == pytest.approx(best["energy_ratio"] * sum(
        b["perf_j"] for b in summary["baselines"].values()), rel=1e-9)
    # a second tune into the same folder is refused without --force
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "not empty" in res.output


def test_ctrl_c_keeps_what_was_found(tmp_path: Path) -> None:
    """SIGINT after the first batch: exit 130, and the files cover the finished trials."""
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "memlat", "tune", "--only", "video,compute", "--duration",
         "0.15", "--trials", "400", "--batch", "2", "--folds", "1", "--knobs", "ipm_ceil",
         "--out", str(tmp_path / "out")],
        stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "/400 trials" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, rest
    assert "interrupted" in rest and "Traceback" not in rest
    summary = json.loads((tmp_path / "out" / "tune.json").read_text())
    assert summary["interrupted"] is True and 2 <= summary["trials"] < 400
    assert (tmp_path / "out" / "tuned-profile.yaml").is_file()


def test_tunes_with_other_settings_never_share_a_stored_study(tmp_path: Path) -> None:
    """The study names carry a digest of the settings: a tune of other workloads into the
    same storage starts its own study instead of resuming (and mis-scoring) another's."""
    runner = CliRunner()
    base = ["tune", "--duration", "0.15", "--trials", "2", "--folds", "1", "--batch", "2",
            "--knobs", "ipm_ceil"]
    first = runner.invoke(app, [*base, "--only", "video,compute", "--out",
                                str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, [*base, "--only", "mcf", "--out", str(tmp_path / "b")])
    assert second.exit_code == 0, second.output
    assert json.loads((tmp_path / "b" / "tune.json").read_text())["trials"] == 2
    assert (tmp_path / "tune.db").is_file()
