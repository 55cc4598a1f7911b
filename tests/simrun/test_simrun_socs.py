"""Every built-in SoC end to end (issue 12 item 3): probe, replay, devfreq show and a short
`memlat run` on the default suite; the SoC and simulation profiles cross-checked; the
suite placed on each SoC's own clusters by role."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memlat.cli import app, run_cli
from memlat.config import list_profiles, load_profile
from memlat.errors import ConfigError
from memlat.sim.policies import POLICIES
from memlat.sim.profile import BUILTIN_PROFILES, cross_check
from memlat.sim.profile import load_profile as load_sim_profile
from memlat.sim.run import load_pair
from memlat.sim.workload import load_suite, parse_workloads
from memlat.traces.io import write_trace
from memlat.traces.synth import synth_trace

SOCS = ("x1e80100", "x1p42100", "glymur", "kaanapali", "sm8550", "sm8650")
COMMANDS = {"x1e80100": 70, "x1p42100": 70, "glymur": 70, "kaanapali": 76, "sm8550": 105,
            "sm8650": 105}
PROFILES = Path(__file__).resolve().parents[2] / "src" / "memlat" / "profiles"


def test_the_six_socs_are_every_builtin_on_both_sides() -> None:
    assert sorted(SOCS) == list_profiles() == sorted(BUILTIN_PROFILES)


@pytest.mark.parametrize("soc", SOCS)
def test_soc_end_to_end(soc: str, tmp_path: Path) -> None:
    runner = CliRunner()
    # probe: every command answered SUCCESS, the firmware running
    res = runner.invoke(app, ["probe", "--soc", soc, "--json"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(ln) for ln in res.output.splitlines() if ln.startswith("{")]
    assert len(rows) == COMMANDS[soc] and all(r["status"] == 0 for r in rows)
    assert f"probe ok: {COMMANDS[soc]}/{COMMANDS[soc]} commands, firmware running" in res.output
    # replay: a seeded synthetic trace for this SoC's CPUs through the firmware governor
    ncpus = load_profile(soc).ncpus
    trace = tmp_path / "trace.csv"
    write_trace(synth_trace(40, ncpus, seed=1), trace)
    out = tmp_path / "replay.csv"
    res = runner.invoke(app, ["replay", "--soc", soc, "--trace", str(trace), "--out", str(out)])
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert lines[0] == "window,group,khz" and len(lines) > 40
    # devfreq show: each bus's files, a current frequency and a trans_stat table
    res = runner.invoke(app, ["devfreq", "show", "--soc", soc, "--duration-ms", "100"])
    assert res.exit_code == 0, res.output
    assert "cur_freq" in res.output and "Total transition" in res.output
    # a short run of the whole default suite, every policy
    report = tmp_path / "report"
    res = runner.invoke(app, ["run", "--soc", soc, "--duration", "0.05", "--jobs", "1",
                              "--out", str(report)])
    assert res.exit_code == 0, res.output
    doc = json.loads((report / "results.json").read_text())
    assert doc["settings"]["soc"] == soc
    assert {r["workload"] for r in doc["results"]} == set(load_suite())
    assert {(r["workload"], r["policy"]) for r in doc["results"]} == {
        (w, p) for w in load_suite() for p in POLICIES}
    assert all(r["time_s"] > 0 and r["energy_j"] > 0 for r in doc["results"])


@pytest.mark.parametrize("soc", SOCS)
def test_profiles_agree_and_every_suite_workload_fits(soc: str) -> None:
    _, prof = load_pair(soc)
    assert prof.all_missing_sources() == []
    suite = load_suite()
    for w in suite.values():
        cpus = w.abs_cpus(prof)
        assert max(cpus) < prof.ncpus
    # mix: one track per role, each track on a single cluster
    for _, place in suite["mix"].placed_tracks(prof):
        assert len({int(prof.cluster_of[c]) for c in place}) == 1
    assert len(suite["mix"].abs_cpus(prof)) == 8


@pytest.mark.parametrize(("soc", "big", "little"), [
    ("x1e80100", [0], [8, 9]), ("sm8550", [7], [0, 1]), ("sm8650", [7], [0, 1]),
    ("kaanapali", [6], [4, 5]), ("x1p42100", [0], [1, 2]), ("glymur", [6], [0, 1])])
def test_mix_lands_on_each_socs_own_clusters(soc: str, big: list[int],
                                             little: list[int]) -> None:
    placed = load_suite()["mix"].placed_tracks(load_sim_profile(soc))
    assert placed[0][1] == big  # mcf on the big cluster
    assert placed[4][1] == little  # mobile_ui on the little cluster (or where it spills)


def _one(cluster: str | None = None, cpus: list[int] | None = None, width: int = 1) -> dict:
    w: dict = {"name": "w", "phases": [{"name": "p", "duration_s": 0.1,
                                        "cpus": list(range(width)), "cpu_mhz": 2000,
                                        "cpi0": 1, "mpki_llcc": 1, "mpki_ddr": 0}]}
    if cluster is not None:
        w["cluster"] = cluster
    if cpus is not None:
        w["cpus"] = cpus
    return w


def test_role_by_cluster_name_and_explicit_cpus() -> None:
    prof = load_sim_profile("sm8550")
    assert parse_workloads({"workloads": [_one("gold", width=2)]}, "x")["w"].abs_cpus(
        prof) == [3, 4]
    assert parse_workloads({"workloads": [_one(cpus=[5])]}, "x")["w"].abs_cpus(prof) == [5]
    assert parse_workloads({"workloads": [_one()]}, "x")["w"].abs_cpus(prof) == [0]


def test_role_without_room_names_the_workload_and_clusters() -> None:
    w = parse_workloads({"workloads": [_one("big", width=6)]}, "x")["w"]
    with pytest.raises(ConfigError, match=r"workloads.w.cluster: no room for 6 CPU\(s\) of "
                                          r"role 'big' on sm8550: .*prime 1, gold 4, silver 3"):
        w.placed_tracks(load_sim_profile("sm8550"))


def test_unknown_role_is_refused() -> None:
    w = parse_workloads({"workloads": [_one("huge")]}, "x")["w"]
    with pytest.raises(ConfigError, match=r"unknown cluster role 'huge' for sm8550 .*big"):
        w.placed_tracks(load_sim_profile("sm8550"))


def test_cluster_and_cpus_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="not both"):
        parse_workloads({"workloads": [_one("big", cpus=[0])]}, "x")


def _bad_soc(tmp_path: Path, old: str, new: str) -> Path:
    text = (PROFILES / "x1e80100.yaml").read_text()
    assert old in text
    f = tmp_path / "x1e80100-mine.yaml"
    f.write_text(text.replace(old, new))
    return f


def test_mismatched_cpu_maximum_is_refused_naming_both_files_and_fields(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _bad_soc(tmp_path, "{id: 5, cluster: 1, max_mhz: 4000}",
                 "{id: 5, cluster: 1, max_mhz: 3860}")
    with pytest.raises(ConfigError) as exc:
        cross_check(load_profile(str(f)), str(f), load_sim_profile("x1e80100"))
    msg = str(exc.value)
    assert f"{f} cpus[5].max_mhz is 3860" in msg
    assert "x1e80100-power.yaml clusters[1].max_mhz (cluster1) is 4000" in msg
    # the CLI refuses before any work starts: no report folder
    out = tmp_path / "report"
    assert run_cli(["run", "--soc", str(f), "--out", str(out)]) == 2  # bad input (cli.md)
    assert "cpus[5].max_mhz" in capsys.readouterr().err and not out.exists()


def test_mismatched_ladder_and_clusters_are_refused(tmp_path: Path) -> None:
    f = _bad_soc(tmp_path, "ladder: [300000, 466000,", "ladder: [300000, 467000,")
    with pytest.raises(ConfigError, match=r"groups\[1\].ladder \(llcc, kHz\) .* but .*"
                                          r"llcc.ladder_mhz"):
        cross_check(load_profile(str(f)), str(f), load_sim_profile("x1e80100"))
    g = _bad_soc(tmp_path, "{id: 4, cluster: 1,", "{id: 4, cluster: 0,")
    with pytest.raises(ConfigError, match=r"cpus\[4\].cluster is 0 .* clusters\[1\].cpus"):
        cross_check(load_profile(str(g)), str(g), load_sim_profile("x1e80100"))
