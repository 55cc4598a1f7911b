"""Workload and profile files: the built-in suite, citations, and validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from memlat.errors import ConfigError
from memlat.sim import BUILTIN_PROFILES, load_profile, load_suite, load_workloads

SUITE_NAMES = {"membench", "mcf", "omnetpp", "lbm", "compute", "mobile_ui", "mobile_game",
               "video", "mix"}


def test_sim_suite_has_the_workloads_md_7_set():
    assert set(load_suite()) == SUITE_NAMES


def test_sim_suite_every_parameter_is_cited():
    for w in load_suite().values():
        for phases in w.track_phases():
            for p in phases:
                assert p.missing_sources() == [], (w.name, p.name)
                for tag in p.source.values():
                    assert "workloads.md" in tag or "assumption" in tag, (w.name, p.name, tag)


def test_sim_mix_uses_all_three_x1e_clusters():
    prof = load_profile("x1e80100")
    cpus = load_suite()["mix"].abs_cpus(prof)
    assert {int(prof.cluster_of[c]) for c in cpus} == {0, 1, 2}


@pytest.mark.parametrize("soc", BUILTIN_PROFILES)
def test_sim_profiles_load_and_are_cited(soc):
    prof = load_profile(soc)
    assert prof.soc == soc
    assert prof.all_missing_sources() == []
    assert len(prof.ddr.opp_mw) == len(prof.ddr.ladder_mhz)


def _write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "w.yaml"
    f.write_text(text, encoding="utf-8")
    return f


GOOD_PHASE = ("{name: a, duration_s: 1.0, cpu_mhz: 3000, cpi0: 0.5, mpki_llcc: 2, "
              "mpki_ddr: 1, mlp: 2}")


def test_sim_workload_file_loads(tmp_path):
    f = _write(tmp_path, f"workloads:\n  - name: w\n    phases:\n      - {GOOD_PHASE}\n")
    assert load_workloads(f)["w"].phases[0].mlp == 2


@pytest.mark.parametrize(("old", "new", "field"), [
    ("mlp: 2", "mlp: 0.5", "workloads[0].phases[0].mlp"),
    ("mlp: 2", "mlp: 2, util: 1.5", "workloads[0].phases[0]"),
    ("mlp: 2", "mlp: 2, colour: red", "workloads[0].phases[0].colour"),
    ("mpki_ddr: 1", "mpki_ddr: 5", "workloads[0].phases[0]"),
    ("mlp: 2", "mlp: 2, read_frac: 0", "workloads[0].phases[0].read_frac"),
])
def test_sim_workload_errors_name_file_and_field(tmp_path, old, new, field):
    phase = GOOD_PHASE.replace(old, new)
    f = _write(tmp_path, f"workloads:\n  - name: w\n    phases:\n      - {phase}\n")
    with pytest.raises(ConfigError) as err:
        load_workloads(f)
    assert err.value.source == str(f)
    assert err.value.location is not None and err.value.location.startswith(field)
    assert str(f) in str(err.value)


def test_sim_workload_yaml_syntax_error_names_line(tmp_path):
    f = _write(tmp_path, "workloads:\n  - name: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_workloads(f)
    assert err.value.source == str(f)
    assert err.value.location is not None and err.value.location.startswith("line")


def test_sim_workload_unknown_use_and_shared_cpus(tmp_path):
    f = _write(tmp_path, "workloads:\n  - name: m\n    tracks:\n      - {use: nope}\n")
    with pytest.raises(ConfigError, match="nope") as err:
        load_workloads(f)
    assert err.value.location == "workloads[0].tracks[0].use"
    f = _write(tmp_path, f"workloads:\n  - name: w\n    phases:\n      - {GOOD_PHASE}\n"
               "  - name: m\n    tracks:\n      - {use: w, cpus: [3]}\n"
               "      - {use: w, cpus: [3]}\n")
    with pytest.raises(ConfigError, match="share CPUs"):
        load_workloads(f)


def test_sim_workload_needs_exactly_one_of_duration_and_instructions(tmp_path):
    phase = GOOD_PHASE.replace("duration_s: 1.0", "duration_s: 1.0, instructions: 5")
    f = _write(tmp_path, f"workloads:\n  - name: w\n    phases:\n      - {phase}\n")
    with pytest.raises(ConfigError, match="exactly one of duration_s and instructions"):
        load_workloads(f)


def test_sim_profile_errors_name_file_and_field(tmp_path):
    src = (Path(__file__).resolve().parents[2] / "src/memlat/sim/data/x1e80100-power.yaml")
    text = src.read_text(encoding="utf-8").replace("  channels: 8\n  bytes_per_cycle: 4",
                                                   "  channels: -8\n  bytes_per_cycle: 4")
    f = tmp_path / "p.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_profile(f)
    assert err.value.source == str(f)
    assert err.value.location == "ddr.channels"
    with pytest.raises(ConfigError, match="no built-in simulation profile"):
        load_profile("nosuchsoc")


def test_yaml_cache_rereads_a_changed_file_and_hands_out_copies(tmp_path):
    from memlat.yamlfile import read_yaml

    path = tmp_path / "w.yaml"
    path.write_text("a: 1\n")
    first = read_yaml(path)
    first["a"] = 99  # the caller's copy: the cache is not touched
    assert read_yaml(path) == {"a": 1}
    path.write_text("a: 22\nb: [1, 2]\n")  # new size: parsed again
    assert read_yaml(path) == {"a": 22, "b": [1, 2]}


def test_cli_run_lists_the_simulator_policies():
    """cli/run.py copies these names for a fast `memlat --help`: they must stay equal."""
    from memlat.cli.run import DEFAULT_ORACLE_BUDGET as CLI_BUDGET
    from memlat.cli.run import POLICIES as CLI_POLICIES
    from memlat.sim.policies import POLICIES
    from memlat.sim.run import DEFAULT_ORACLE_BUDGET

    assert CLI_POLICIES == POLICIES
    assert CLI_BUDGET == DEFAULT_ORACLE_BUDGET
