"""Device-tree input: the RFC binding (protocol.md §4.3) and qcom,scmi-memlat, with errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from memlat.config import load_config, load_dts, load_profile
from memlat.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "memlat" / "examples"
RFC = EXAMPLES / "x1e80100-memlat-rfc.dts"
NEW_DTS = EXAMPLES / "x1e80100-crd-memlat.dts"
NEW_DTSI = EXAMPLES / "x1e80100-memlat.dtsi"
MEMLAT = "/firmware/scmi/protocol@80/memlat"


def variant(tmp_path: Path, src: Path, old: str, new: str) -> Path:
    """A copy of an example (with the .dtsi beside it) with one text edit."""
    for f in (NEW_DTS, NEW_DTSI):
        shutil.copy(f, tmp_path / f.name)
    text = src.read_text()
    assert old in text, old
    out = tmp_path / src.name
    out.write_text(text.replace(old, new, 1))
    return out


def error_of(path: Path, dialect: str | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load_dts(path, dialect=dialect)
    assert err.value.source == str(path)
    return err.value


def test_rfc_dt_gives_the_exact_section_4_3_values() -> None:
    soc = load_config(dts=RFC)
    assert soc.name == "x1e80100" and soc.dialect == "rfc2024"
    assert soc.sample_ms == 8
    assert soc.common_events.slots("rfc2024") == [2, 0, 0xFF, 0xFF]
    got = [(g.hw_type, g.min_value, g.max_value, soc.mem_group_cpumask(g), g.events.slots(),
            m.cpumask, m.mon_type, i, m.wire_name(i, "rfc2024"), m.ipm, list(m.map))
           for g, i, m in soc.monitors()]
    assert got == [
        (0, 200000, 4224000, 0, [5, 0xFF, 0xFF], 0xFFF, 0, 0, "monitor-0", 20000000,
         [(999, 547), (1440, 768), (1671, 1555), (2189, 2092), (2156, 3187), (3860, 4224)]),
        (0, 200000, 4224000, 0, [5, 0xFF, 0xFF], 0xFFF, 1, 1, "monitor-1", 0,
         [(1440, 200), (2189, 768), (2156, 1555), (3860, 2092)]),
        (1, 300000, 1067000, 0, [5, 0xFF, 0xFF], 0xFFF, 0, 0, "monitor-0", 20000000,
         [(999, 300), (1440, 466), (1671, 600), (2189, 806), (2156, 933), (3860, 1066)]),
    ]
    assert [m.scalar_params("rfc2024") for _, _, m in soc.monitors()] == [
        [("IPM_CEIL", 20000000)], [("IPM_CEIL", 0)], [("IPM_CEIL", 20000000)]]
    assert soc.command_count() == 22  # protocol.md §4.4
    assert len(soc.warnings) == 3
    assert soc.warnings[0].startswith(f"{MEMLAT}/memory@0/monitor-0:qcom,cpufreq-memfreq-tbl")
    assert [c.cluster for c in soc.cpus] == [0] * 4 + [1] * 4 + [2] * 4


def test_rfc_dt_in_v8_dialect_refuses_the_unsorted_table() -> None:
    err = error_of(RFC, dialect="v8")
    assert err.location == f"{MEMLAT}/memory@0/monitor-0:qcom,cpufreq-memfreq-tbl"
    assert "row 3 has 2189, row 4 has 2156" in str(err)


def test_new_binding_with_include_labels_and_opp_tables_equals_the_profile() -> None:
    soc = load_config(dts=NEW_DTS)
    ref = load_profile("x1e80100")
    assert soc.name == "x1e80100" and soc.dialect == "v8" and soc.warnings == []
    assert soc.soc.description == "Qualcomm Technologies, Inc. X1E80100 CRD"
    assert soc.command_count() == 70
    assert soc.cpus == ref.cpus  # clusters from cpu-map, max MHz from the CPU OPP table
    assert soc.common_events == ref.common_events and soc.sample_ms == 4
    for g, r in zip(soc.groups, ref.groups, strict=True):
        assert (g.name, g.hw_type, g.unit, g.ladder, g.min_value, g.max_value, g.events) == (
            r.name, r.hw_type, r.unit, r.ladder, r.min_value, r.max_value, r.events)
        assert [m.model_dump() for m in g.monitors] == [m.model_dump() for m in r.monitors]


def test_board_overrides_through_a_label(tmp_path: Path) -> None:
    dts = variant(tmp_path, NEW_DTS, "qcom,sample-period-ms = <4>;",
                  "qcom,sample-period-ms = <16>;")
    assert load_dts(dts).sample_ms == 16


def test_missing_property_names_node_and_property(tmp_path: Path) -> None:
    dts = variant(tmp_path, RFC, "freq-table-khz = <300000 1067000>;", "")
    err = error_of(dts)
    assert err.location == f"{MEMLAT}/memory@1:freq-table-khz"
    assert "required property is missing" in str(err)
    dtsi = variant(tmp_path, NEW_DTSI, "qcom,cpu-mem-opps = HAMOA_LLCC_MAP;", "")
    err = error_of(tmp_path / NEW_DTS.name)
    assert err.source == str(tmp_path / NEW_DTS.name) and dtsi.exists()
    assert err.location == f"{MEMLAT}/llcc@1/monitor-0:qcom,cpu-mem-opps"


def test_phandle_to_a_non_cpu_node(tmp_path: Path) -> None:
    dts = variant(tmp_path, RFC, "qcom,cpulist = <&CPU0 &CPU1", "qcom,cpulist = <&cpucp_mbox &CPU1")
    err = error_of(dts)
    assert err.location == f"{MEMLAT}/memory@0/monitor-0:qcom,cpulist"
    assert "entry 0: /soc@0/mailbox@17430000 is not a CPU node" in str(err)


def test_dangling_numeric_phandle(tmp_path: Path) -> None:
    variant(tmp_path, NEW_DTSI, "cpus = <&CPU4 &CPU5 &CPU6 &CPU7>;", "cpus = <&CPU4 0x999>;")
    err = error_of(tmp_path / NEW_DTS.name)
    assert err.location == f"{MEMLAT}/ddr@0/monitor-1:cpus"
    assert "entry 1: phandle 0x999 does not point to any node" in str(err)


def test_undefined_label_names_the_node(tmp_path: Path) -> None:
    variant(tmp_path, NEW_DTSI, "cpus = <&CPU8 &CPU9 &CPU10 &CPU11>;",
            "cpus = <&CPU8 &CPU9 &CPU10 &CPU99>;")
    err = error_of(tmp_path / NEW_DTS.name)
    assert err.location == f"{MEMLAT}/ddr@0/monitor-2"
    assert "reference &CPU99 to an undefined label" in str(err)


def test_syntax_error_names_the_included_file_and_line(tmp_path: Path) -> None:
    variant(tmp_path, NEW_DTSI, "qcom,ipm-ceil = <MEMLAT_IPM_CEIL>;",
            "qcom,ipm-ceil = <MEMLAT_IPM_CEIL>")
    err = error_of(tmp_path / NEW_DTS.name)
    assert "does not parse" in str(err) and "x1e80100-memlat.dtsi:" in str(err)


def test_non_ascending_map_in_new_binding(tmp_path: Path) -> None:
    variant(tmp_path, NEW_DTSI, "<&cpu_opp_2188 &qos_opp_0>, <&cpu_opp_3859 &qos_opp_1>",
            "<&cpu_opp_3859 &qos_opp_0>, <&cpu_opp_2188 &qos_opp_1>")
    err = error_of(tmp_path / NEW_DTS.name)
    assert err.location == f"{MEMLAT}/ddr-qos@2/monitor-0:qcom,cpu-mem-opps"
    assert "must ascend by cpu MHz" in str(err)


def test_cpu_outside_group(tmp_path: Path) -> None:
    variant(tmp_path, NEW_DTSI, "qcom,group-events = <5 0xff 0xff>;\n\n\t\t\t\t\t\tmonitor-0",
            "qcom,group-events = <5 0xff 0xff>;\n\t\t\t\t\t\tcpus = <&CPU0 &CPU1 &CPU2 &CPU3>;"
            "\n\n\t\t\t\t\t\tmonitor-0")
    err = error_of(tmp_path / NEW_DTS.name)
    assert err.location == f"{MEMLAT}/ddr@0/monitor-1:cpus"
    assert "outside group 'ddr' cpumask 0xf" in str(err)


def test_frequency_outside_ladder(tmp_path: Path) -> None:
    # RFC: a mem kHz beyond freq-table-khz
    dts = variant(tmp_path, RFC, "<3860000 1066000>;", "<3860000 1200000>;")
    err = error_of(dts)
    assert err.location == f"{MEMLAT}/memory@1/monitor-0:qcom,cpufreq-memfreq-tbl"
    assert "1200 MHz is outside group 'llcc' ladder range 300..1067 MHz" in str(err)
    # new binding: a bus OPP that is not in the group's own table
    variant(tmp_path, NEW_DTSI, "<&cpu_opp_2188 &qos_opp_0>, <&cpu_opp_3859 &qos_opp_1>",
            "<&cpu_opp_2188 &qos_opp_0>, <&cpu_opp_3859 &llcc_opp_1066>")
    err = error_of(tmp_path / NEW_DTS.name)
    assert err.location == f"{MEMLAT}/ddr-qos@2/monitor-0:qcom,cpu-mem-opps"
    assert "entry 1: /opp-table-llcc/opp-1066000000 is not an OPP of the group's table" in str(err)
    # and a limit outside the OPP table
    variant(tmp_path, NEW_DTSI, "qcom,max-frequency-hz = /bits/ 64 <4224000000>;",
            "qcom,max-frequency-hz = /bits/ 64 <4761000000>;")
    err = error_of(tmp_path / NEW_DTS.name)
    assert err.location == f"{MEMLAT}/ddr@0:qcom,max-frequency-hz"


def test_too_many_rows(tmp_path: Path) -> None:
    dts = variant(tmp_path, RFC, "<3860000 1066000>;", "<3860000 1066000>, <3900000 1066000>;")
    err = error_of(dts)
    assert err.location == f"{MEMLAT}/memory@1/monitor-0:qcom,cpufreq-memfreq-tbl"
    assert "7 map rows, rfc2024 allows at most 6" in str(err)


def test_missing_include_and_missing_file(tmp_path: Path) -> None:
    dts = tmp_path / "board.dts"
    dts.write_text('/dts-v1/;\n#include "nowhere.dtsi"\n/ { };\n')
    err = error_of(dts)
    assert "preprocessing failed" in str(err) and "nowhere.dtsi" in str(err)
    with pytest.raises(ConfigError, match="no such device-tree file"):
        load_dts(tmp_path / "absent.dts")


def test_tree_without_memlat_node(tmp_path: Path) -> None:
    dts = tmp_path / "plain.dts"
    dts.write_text('/dts-v1/;\n/ { cpus { cpu@0 { device_type = "cpu"; reg = <0>; }; }; };\n')
    err = error_of(dts)
    assert "no memlat node" in str(err) and err.location == "/"


def test_bandwidth_opps_need_a_bus_width(tmp_path: Path) -> None:
    variant(tmp_path, NEW_DTSI, "qcom,bus-width-bytes = <4>;", "")
    err = error_of(tmp_path / NEW_DTS.name)
    assert err.location == f"{MEMLAT}/ddr@0:qcom,bus-width-bytes"
    assert "opp-peak-kBps" in str(err)
