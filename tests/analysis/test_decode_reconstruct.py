"""Reconstruction: probe trace of each built-in SoC -> profile YAML -> the same probe bytes.

The trace is what the in-process probe sends, rendered as kernel ftrace lines
(memlat.analysis.decode.synth); `memlat decode --profile-out` rebuilds the profile;
`memlat probe --soc-file` of that profile must print exactly what `memlat probe --soc`
prints (decisions.md §5 JSON lines: payloads, tokens, statuses, replies).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from memlat.agent.probe import build_sequence
from memlat.analysis.decode import decode_file, decode_text, programmed
from memlat.analysis.decode.reconstruct import diff_profiles, reconstruct
from memlat.analysis.decode.synth import probe_trace
from memlat.cli import app
from memlat.config.profiles import list_profiles, load_profile, parse_yaml
from memlat.errors import ConfigError

runner = CliRunner()
DATA = Path(__file__).parent / "data"
EXAMPLE = Path(__file__).parents[2] / "src" / "memlat" / "examples" / "x1e80100-boot.trace"


@pytest.mark.parametrize("name", list_profiles())
def test_round_trip_probe_bytes(tmp_path: Path, name: str) -> None:
    trace = tmp_path / f"{name}.trace"
    trace.write_text(probe_trace(name))
    profile = tmp_path / f"{name}.yaml"
    res = runner.invoke(app, ["decode", str(trace), "--profile-out", str(profile)])
    assert res.exit_code == 0, res.output
    assert profile.is_file()
    built_in = runner.invoke(app, ["probe", "--soc", name, "--json"])
    rebuilt = runner.invoke(app, ["probe", "--soc-file", str(profile), "--json"])
    assert rebuilt.exit_code == built_in.exit_code == 0
    assert rebuilt.stdout == built_in.stdout
    assert len(rebuilt.stdout.splitlines()) == load_profile(name).command_count()


@pytest.mark.parametrize("name", list_profiles())
def test_round_trip_without_a_base_profile(name: str) -> None:
    soc = load_profile(name)
    r = decode_text(probe_trace(name, on_error="continue"))
    rec = reconstruct(programmed(r, include_refused=True), None)
    again = parse_yaml(rec.yaml(), "rebuilt")
    assert again.name == "from-trace"
    assert ([m.payload for m in build_sequence(again, soc.dialect)]
            == [m.payload for m in build_sequence(soc, soc.dialect)])


def test_rfc2024_round_trip(tmp_path: Path) -> None:
    trace = tmp_path / "rfc.trace"
    trace.write_text(probe_trace("x1e80100", "rfc2024"))
    profile = tmp_path / "rfc.yaml"
    res = runner.invoke(app, ["decode", str(trace), "--profile-out", str(profile)])
    assert res.exit_code == 0, res.output
    assert parse_yaml(profile.read_text(), "rfc").dialect == "rfc2024"
    a = runner.invoke(app, ["probe", "--soc", "x1e80100", "--dialect", "rfc2024", "--json"])
    b = runner.invoke(app, ["probe", "--soc-file", str(profile), "--json"])
    assert a.stdout == b.stdout and a.exit_code == b.exit_code == 0


def test_refused_commands_are_not_programmed() -> None:
    r = decode_file(DATA / "mixed.trace")
    sent = [p.param_id for p in programmed(r, include_refused=True)]
    kept = [p.param_id for p in programmed(r)]
    assert sent == [16, 17, 23, 31] and kept == [16, 23, 31]  # SET_MONITOR was refused


def test_diff_names_the_changed_knob(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    # IPM_CEIL of ddr mon 1: 20000000 (0x01312d00) -> 15000000 (0x00e4e1c0)
    old = "0000000054414c4d454d000017000000000000000100000000" + "2d3101"
    assert text.count(old) == 1
    edited = tmp_path / "edited.trace"
    edited.write_text(text.replace(old, old[:-8] + "c0e1e400"))
    res = runner.invoke(app, ["decode", str(edited), "--diff", "--soc", "x1e80100"])
    assert res.exit_code == 0, res.output
    assert "diff against built-in x1e80100: 1 difference" in res.stdout
    assert "groups[0].monitors[1].ipm_ceil: built-in 20000000, trace 15000000" in res.stdout
    rec = reconstruct(programmed(decode_file(edited)), load_profile("x1e80100"))
    assert diff_profiles(rec.soc, load_profile("x1e80100")) == [
        "groups[0].monitors[1].ipm_ceil: built-in 20000000, trace 15000000"]


def test_profile_out_never_overwrites(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("hand written\n")
    res = runner.invoke(app, ["decode", str(EXAMPLE), "--profile-out", str(mine)])
    assert res.exit_code == 2 and "not overwriting" in res.stderr
    assert mine.read_text() == "hand written\n"


def test_no_programmed_group_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no memory group was programmed"):
        reconstruct([], None, source="empty.trace")


def test_soc_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("soc: {name: x}\ncpus: []\n")
    res = runner.invoke(app, ["probe", "--soc-file", str(bad), "--json"])
    assert res.exit_code == 2 and "bad.yaml" in res.stderr
    both = runner.invoke(app, ["probe", "--soc-file", str(bad), "--soc", "x1e80100"])
    assert both.exit_code == 2 and "--soc-file" in both.stderr
