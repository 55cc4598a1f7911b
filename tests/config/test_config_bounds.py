"""Bounds on device-tree and YAML inputs (issue 17 item 3, DT/YAML part): include cycles
by resolved path, include depth, nesting depth and size, each a clear ConfigError naming
the limit instead of a hang, a RecursionError or a long parse."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from memlat.config.dt import MAX_DT_DEPTH, MAX_INCLUDE_DEPTH, load_dts, parse_dts
from memlat.config.profiles import load_profile_file
from memlat.errors import ConfigError
from memlat.sim.profile import load_profile as load_sim_profile
from memlat.sim.workload import load_workloads
from memlat.yamlfile import MAX_YAML_DEPTH, parse_yaml_text

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "src" / "memlat" / "examples" / "x1e80100-crd-memlat.dts"


@pytest.mark.parametrize("directive", ['#include "sub/self.dtsi"', '/include/ "sub/self.dtsi"'])
def test_dtsi_including_itself_through_a_directory_is_refused(tmp_path: Path,
                                                              directive: str) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "top.dts").write_text(f'/dts-v1/;\n{directive}\n/ {{ }};\n')
    (tmp_path / "sub" / "self.dtsi").write_text(f"{directive}\n/ {{ a = <1>; }};\n")
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"include cycle: .*sub/self\.dtsi -> .*sub/self\.dtsi"):
        parse_dts(tmp_path / "top.dts")
    assert time.monotonic() - start < 10  # the hang: bounded now


def test_two_file_include_cycle_names_the_chain(tmp_path: Path) -> None:
    (tmp_path / "a.dtsi").write_text('#include "b.dtsi"\n')
    (tmp_path / "b.dtsi").write_text('#include "a.dtsi"\n')
    (tmp_path / "top.dts").write_text('/dts-v1/;\n#include "a.dtsi"\n/ { };\n')
    with pytest.raises(ConfigError, match=r"a\.dtsi -> .*b\.dtsi -> .*a\.dtsi"):
        parse_dts(tmp_path / "top.dts")


def test_diamond_includes_are_not_cycles(tmp_path: Path) -> None:
    (tmp_path / "leaf.dtsi").write_text("/ { leaf = <1>; };\n")
    (tmp_path / "l.dtsi").write_text('#include "leaf.dtsi"\n')
    (tmp_path / "r.dtsi").write_text('#include "leaf.dtsi"\n')
    (tmp_path / "top.dts").write_text('/dts-v1/;\n#include "l.dtsi"\n#include "r.dtsi"\n'
                                      '/ { };\n')
    assert parse_dts(tmp_path / "top.dts").root.props["leaf"].value == b"\0\0\0\1"


def test_include_depth_is_bounded(tmp_path: Path) -> None:
    n = MAX_INCLUDE_DEPTH + 2
    for i in range(n):
        (tmp_path / f"d{i}.dtsi").write_text(f'#include "d{i + 1}.dtsi"\n' if i < n - 1
                                             else "/ { };\n")
    (tmp_path / "top.dts").write_text('/dts-v1/;\n#include "d0.dtsi"\n')
    with pytest.raises(ConfigError, match=f"includes nest deeper than {MAX_INCLUDE_DEPTH}"):
        parse_dts(tmp_path / "top.dts")


def test_exponential_includes_hit_the_size_bound_before_cpp(tmp_path: Path) -> None:
    for i in range(30):  # each level includes the next twice: 2**30 copies
        (tmp_path / f"e{i}.dtsi").write_text(f'#include "e{i + 1}.dtsi"\n' * 2)
    (tmp_path / "e30.dtsi").write_text("/ { x = <1>; };\n" * 10)
    (tmp_path / "top.dts").write_text('/dts-v1/;\n#include "e0.dtsi"\n')
    with pytest.raises(ConfigError, match=r"over the device-tree limit of .* MEMLAT_MAX_DT_BYTES"):
        parse_dts(tmp_path / "top.dts")


def _nested_dts(levels: int) -> str:
    return ("/dts-v1/;\n/ {\n" + "n {\n" * levels + "x = <1>;\n" + "};\n" * levels
            + "};\n")


def test_dts_nested_1000_levels_names_the_limit(tmp_path: Path) -> None:
    f = tmp_path / "deep.dts"
    f.write_text(_nested_dts(1000))
    with pytest.raises(ConfigError, match=f"nest deeper than {MAX_DT_DEPTH} levels"):
        load_dts(f)


def test_dts_at_the_depth_limit_still_parses(tmp_path: Path) -> None:
    f = tmp_path / "ok.dts"
    f.write_text(_nested_dts(MAX_DT_DEPTH))
    assert parse_dts(f).get_node("/" + "/".join(["n"] * MAX_DT_DEPTH)).props["x"]


@pytest.mark.skipif(shutil.which("dtc") is None, reason="dtc not installed")
def test_dtb_nested_too_deep_names_the_limit(tmp_path: Path) -> None:
    src = tmp_path / "deep.dts"
    src.write_text(_nested_dts(200))
    dtb = tmp_path / "deep.dtb"
    subprocess.run(["dtc", "-q", "-O", "dtb", "-o", str(dtb), str(src)], check=True)
    with pytest.raises(ConfigError, match=f"deep.dtb:/n/n.*nest deeper than {MAX_DT_DEPTH}"):
        load_dts(dtb)


def test_large_dts_is_refused_naming_the_limit_and_how_to_raise_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMLAT_MAX_DT_BYTES", "4096")
    with pytest.raises(ConfigError, match=r"over the device-tree limit of 4096 bytes \(set "
                                          r"MEMLAT_MAX_DT_BYTES to raise it\)"):
        load_dts(CRD)
    monkeypatch.setenv("MEMLAT_MAX_DT_BYTES", str(1 << 20))
    assert load_dts(CRD).command_count() == 70


def test_bad_limit_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMLAT_MAX_DT_BYTES", "lots")
    with pytest.raises(ConfigError, match="MEMLAT_MAX_DT_BYTES: must be a positive number"):
        load_dts(CRD)


def _nested_yaml(levels: int, flow: bool) -> str:
    if flow:
        return "a: " + "[" * levels + "1" + "]" * levels + "\n"
    return "".join("  " * i + "k:\n" for i in range(levels)) + "  " * levels + "v: 1\n"


@pytest.mark.parametrize("flow", [True, False], ids=["flow", "block"])
def test_yaml_nested_500_levels_names_the_limit(flow: bool) -> None:
    with pytest.raises(ConfigError, match=f"x.yaml:line \\d+: nested deeper than "
                                          f"{MAX_YAML_DEPTH} levels"):
        parse_yaml_text(_nested_yaml(500, flow), "x.yaml")


def test_yaml_within_the_depth_limit_parses() -> None:
    assert parse_yaml_text(_nested_yaml(MAX_YAML_DEPTH - 2, True), "x.yaml")["a"]


@pytest.mark.parametrize("loader", [load_profile_file, load_workloads, load_sim_profile],
                         ids=["soc-profile", "workloads", "sim-profile"])
def test_every_yaml_file_kind_is_bounded(tmp_path: Path, loader) -> None:
    f = tmp_path / "deep.yaml"
    f.write_text(_nested_yaml(500, True))
    with pytest.raises(ConfigError, match=f"deep.yaml:line 1: nested deeper than {MAX_YAML_DEPTH}"):
        loader(f)


def test_large_yaml_is_refused_naming_the_limit(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMLAT_MAX_YAML_BYTES", "1000")
    f = tmp_path / "big.yaml"
    f.write_text("workloads:\n" + "# padding\n" * 200)
    with pytest.raises(ConfigError, match=r"big.yaml: 2011 bytes, over the YAML limit of 1000 "
                                          r"bytes \(set MEMLAT_MAX_YAML_BYTES to raise it\)"):
        load_workloads(f)
