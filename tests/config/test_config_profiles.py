"""Built-in SoC profiles against the spec tables (protocol.md §3.2-§3.4, algorithm.md §3.3-3.4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from memlat.agent.offline import programmed_governor as governor_config
from memlat.config import list_profiles, load_config, load_profile
from memlat.errors import ConfigError

FF = 0xFF

# protocol.md §3.2, written out again here (not read from the YAML) so a typo in either
# place fails. (group, hw_type, min kHz, max kHz, OPPs MHz or levels)
HAMOA_GROUPS = [
    ("ddr", 0, 200000, 4224000, [200, 547, 768, 1555, 1708, 2092, 2736, 3187, 3686, 4224]),
    ("llcc", 1, 300000, 1066000, [300, 466, 600, 806, 933, 1066]),
    ("ddr-qos", 2, 0, 1, [0, 1]),
]
H_DDR = [(999, 547), (1440, 768), (1671, 1555), (2189, 2092), (2516, 3187), (3860, 4224)]
H_LLCC = [(999, 300), (1440, 466), (1671, 600), (2189, 806), (2516, 933), (3860, 1066)]
H_QOS = [(2189, 0), (3860, 1)]
# (group, mon_idx, cpumask, ipm_ceil, be_floor, mon_type, map)
HAMOA_MONITORS = [
    ("ddr", 0, 0x00F, 20000000, 1, 0, H_DDR),
    ("ddr", 1, 0x0F0, 20000000, 1, 0, H_DDR),
    ("ddr", 2, 0xF00, 20000000, 1, 0, H_DDR),
    ("ddr", 3, 0xFFF, 0, 0, 1, [(1440, 547), (2189, 768), (2516, 1555), (3860, 2092)]),
    ("llcc", 0, 0x00F, 20000000, 1, 0, H_LLCC),
    ("llcc", 1, 0x0F0, 20000000, 1, 0, H_LLCC),
    ("llcc", 2, 0xF00, 20000000, 1, 0, H_LLCC),
    ("ddr-qos", 0, 0x00F, 20000000, 1, 0, H_QOS),
    ("ddr-qos", 1, 0x0F0, 20000000, 1, 0, H_QOS),
    ("ddr-qos", 2, 0xF00, 20000000, 1, 0, H_QOS),
]

GLYMUR_GROUPS = [
    ("ddr", 0, 547000, 4761000, [200, 547, 1353, 1555, 1708, 2092, 2736, 3187, 3686, 4224,
                                 4761]),
    ("llcc", 1, 315000, 1211000, [315, 479, 545, 725, 840, 959, 1090, 1211]),
    ("ddr-qos", 2, 0, 1, [0, 1]),
]
G_DDR12 = [(356, 547), (1018, 1353), (1536, 1555), (1748, 1708), (2324, 2736), (2496, 3187),
           (2900, 3686), (3514, 4761)]
G_LLCC12 = [(356, 315), (1018, 479), (1536, 545), (1748, 725), (2496, 840), (2900, 959),
            (3514, 1211)]
GLYMUR_MONITORS = [
    ("ddr", 0, 0x0003F, 60000000, 1, 0, [(960, 547), (1133, 1353), (1594, 1555), (1920, 1708),
                                         (2228, 2736), (2362, 3187), (2650, 3686),
                                         (2938, 4761)]),
    ("ddr", 1, 0x00FC0, 60000000, 1, 0, G_DDR12),
    ("ddr", 2, 0x3F000, 60000000, 1, 0, G_DDR12),
    ("ddr", 3, 0x3FFFF, 0, 0, 1, [(2823, 547), (3034, 1555), (3226, 1708), (5012, 2092)]),
    ("llcc", 0, 0x0003F, 60000000, 1, 0, [(960, 315), (1113, 479), (1594, 545), (1920, 725),
                                          (2362, 840), (2650, 959), (2938, 1211)]),
    ("llcc", 1, 0x00FC0, 60000000, 1, 0, G_LLCC12),
    ("llcc", 2, 0x3F000, 60000000, 1, 0, G_LLCC12),
    ("ddr-qos", 0, 0x0003F, 80000000, 1, 0, [(2362, 0), (2938, 1)]),
    ("ddr-qos", 1, 0x00FC0, 80000000, 1, 0, [(2496, 0), (3514, 1)]),
    ("ddr-qos", 2, 0x3F000, 80000000, 1, 0, [(2496, 0), (3514, 1)]),
]

KAANAPALI_GROUPS = [
    ("ddr", 0, 547000, 5333000, [547, 1353, 1555, 1708, 2092, 2736, 3187, 3686, 4224, 4780,
                                 5333]),
    ("llcc", 1, 282000, 1350000, [282, 350, 533, 605.6, 806, 933, 1066, 1211, 1350]),
    ("ddr-qos", 3, 0, 1, [0, 1]),
]
KAANAPALI_MONITORS = [
    ("ddr", 0, 0x3F, 20000000, 1, 0, [(787, 547), (960, 1353), (1200, 1555), (1536, 2092),
                                      (2534, 3187), (3552, 3686)]),
    ("ddr", 1, 0xC0, 20000000, 1, 0, [(614, 547), (864, 1353), (1382, 2092), (2131, 3187),
                                      (2726, 3686), (3513, 4224), (3916, 4780), (4185, 5333)]),
    ("ddr", 2, 0xFF, 0, 0, 1, [(2035, 547), (4185, 2092)]),
    ("ddr", 3, 0xC0, 20000000, 1, 0, [(2726, 547), (4185, 4224)]),
    ("llcc", 0, 0x3F, 20000000, 1, 0, [(787, 282), (960, 350), (1536, 533), (2534, 806),
                                       (3552, 933)]),
    ("llcc", 1, 0xC0, 20000000, 1, 0, [(614, 282), (864, 350), (1382, 533), (2131, 806),
                                       (2726, 933), (3513, 1066), (3916, 1211), (4185, 1350)]),
    ("llcc", 2, 0xFF, 0, 0, 1, [(2035, 282), (4185, 533)]),
    ("ddr-qos", 0, 0xFF, 20000000, 1, 0, [(2035, 0), (4185, 1)]),
    ("ddr-qos", 1, 0xC0, 20000000, 1, 0, [(1574, 0), (4185, 1)]),
    ("ddr-qos", 2, 0xC0, 20000000, 1, 0, [(2131, 0), (4185, 1)]),
    ("ddr-qos", 3, 0xC0, 0, 0, 1, [(3513, 0), (4185, 1)]),
]

TABLES = {
    "x1e80100": (12, [2, 0, 1, FF, 3], HAMOA_GROUPS, HAMOA_MONITORS, 70),
    "glymur": (18, [2, 0, 1, FF, 3], GLYMUR_GROUPS, GLYMUR_MONITORS, 70),
    "kaanapali": (8, [2, 0, FF, FF, FF], KAANAPALI_GROUPS, KAANAPALI_MONITORS, 76),
}


def test_every_builtin_profile_loads_and_converts() -> None:
    names = list_profiles()
    assert names == ["glymur", "kaanapali", "sm8550", "sm8650", "x1e80100", "x1p42100"]
    for name in names:
        soc = load_profile(name)
        assert soc.name == name
        assert soc.warnings == [] or name == "x1p42100"
        gov = governor_config(soc)
        assert gov.ncpus == soc.ncpus
        assert len(gov.monitors) == len(soc.monitors())


@pytest.mark.parametrize("name", sorted(TABLES))
def test_profile_matches_spec_tables(name: str) -> None:
    ncpus, common, groups, monitors, commands = TABLES[name]
    soc = load_profile(name)
    assert soc.ncpus == ncpus
    assert soc.sample_ms == 4 and soc.freq_method == 1
    assert soc.common_events.slots("v8") == common
    assert [(g.name, g.hw_type, g.min_value, g.max_value) for g in soc.groups] == [
        row[:4] for row in groups]
    for g, (_, _, _, _, opps) in zip(soc.groups, groups, strict=True):
        assert g.ladder == [round(x * 1000) if not g.is_level else x for x in opps]
        assert g.events.slots() == [5, FF, FF]
        assert soc.mem_group_cpumask(g, "v8") == (1 << ncpus) - 1
    got = [(g.name, i, m.cpumask, m.ipm, m.be_floor, m.mon_type, list(m.map))
           for g, i, m in soc.monitors()]
    assert got == monitors
    assert [m.wire_name(i, "v8") for _, i, m in soc.monitors()] == [
        f"mon_{row[1]}" for row in monitors]
    # 1 + sum(2 + 6 * monitors) + 3 (protocol.md §3.5)
    assert soc.command_count() == commands
    assert commands == 1 + sum(2 + 6 * len(g.monitors) for g in soc.groups) + 3


def test_kaanapali_ddr_qos_is_hw_type_3_and_level_group() -> None:
    qos = load_profile("kaanapali").group("ddr_qos")
    assert qos.hw_type == 3 and qos.is_level and qos.opp_hz() == [1, 100]


def test_x1p42100_reuses_hamoa_wire_tables_with_eight_cpus() -> None:
    hamoa, purwa = load_profile("x1e80100"), load_profile("x1p42100")
    assert purwa.ncpus == 8 and purwa.static_hw_masks
    assert purwa.command_count() == 70
    assert [g.model_dump() for g in purwa.groups] == [g.model_dump() for g in hamoa.groups]
    assert purwa.mem_group_cpumask(purwa.groups[0]) == 0xFF
    assert len(purwa.warnings) == 4 and "0xf00" in purwa.warnings[0]
    gov = governor_config(purwa)
    assert [m.cpumask for _, _, m in gov.monitors][:4] == [0x0F, 0xF0, 0x00, 0xFF]


def test_downstream_profiles_keep_post_boot_tunables() -> None:
    kalama = load_profile("sm8550")
    assert [(g.name, g.hw_type) for g in kalama.groups] == [
        ("ddr", 0), ("llcc", 1), ("l3", 2), ("ddr-qos", 3)]
    prime = kalama.group("ddr").monitors[2]
    assert prime.name == "prime" and prime.cpumask == 0x80
    assert prime.optional_knobs() == [("FREQ_SCALE_PCT", 25), ("FREQ_SCALE_CEIL_MHZ", 2726),
                                      ("FREQ_SCALE_FLOOR_MHZ", 1500)]
    assert prime.map[-1] == (2707, 4224)
    assert [m.ipm for m in kalama.group("ddr-qos").monitors] == [50, 100, 25000]
    assert [m.ipm for m in kalama.group("l3").monitors] == [400, 4000, 20000, 0]
    assert len(kalama.group("l3").monitors[0].map) == 10  # 12 DT rows, firmware limit 10
    # 15 monitors + 3 optional knobs: 1 + 4*2 + 15*6 + 3 + 3
    assert kalama.command_count() == 105
    pine = load_profile("sm8650")
    assert pine.group("ddr").monitors[1].map[-1] == (3187, 4224)
    assert pine.group("llcc").monitors[1].cpumask == 0xFC


def test_aliases_and_compatibles_resolve() -> None:
    assert load_profile("hamoa").name == "x1e80100"
    assert load_profile("qcom,mahua").name == "glymur"
    assert load_profile("KALAMA").name == "sm8550"


def test_unknown_soc_name_names_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        load_config("sm9999")
    assert err.value.location == "soc"
    assert "unknown SoC 'sm9999'" in str(err.value) and "x1e80100" in str(err.value)


def test_load_config_default_and_dialect_switch() -> None:
    assert load_config().name == "x1e80100"
    rfc = load_config("x1e80100", dialect="rfc2024")
    assert rfc.dialect == "rfc2024"
    assert rfc.command_count() == 59  # no BE_STALL_FLOOR, no method
    assert rfc.common_events.slots("rfc2024") == [2, 0, FF, 3]
    with pytest.raises(ConfigError, match=r"8 map rows, rfc2024 allows at most 6") as err:
        load_config("glymur", dialect="rfc2024")
    assert err.value.location == "groups[0].monitors[0].map"
    with pytest.raises(ConfigError, match="unknown dialect"):
        load_config("x1e80100", dialect="v9")
    with pytest.raises(ConfigError, match="not both"):
        load_config("x1e80100", dts="x.dts")


def test_user_yaml_file(tmp_path: Path) -> None:
    src = (Path(__file__).resolve().parents[2] / "src/memlat/profiles/x1e80100.yaml").read_text()
    good = tmp_path / "mine.yaml"
    good.write_text(src.replace("name: x1e80100", "name: mine"))
    assert load_config(str(good)).name == "mine"
    bad = tmp_path / "bad.yaml"
    bad.write_text(src.replace("ipm_ceil: 20000000, be_stall_floor: 1, map: *llcc_map}",
                               "ipm_ceil: 20000000, be_stall_floor: 150, map: *llcc_map}", 1))
    with pytest.raises(ConfigError) as err:
        load_config(str(bad))
    assert err.value.source == str(bad)
    assert err.value.location == "groups[1].monitors[1].be_stall_floor"
    broken = tmp_path / "broken.yaml"
    broken.write_text("soc: {name: x\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(broken))
    assert err.value.source == str(broken) and err.value.location.startswith("line ")
    with pytest.raises(ConfigError, match="cannot read profile"):
        load_config(str(tmp_path / "missing.yaml"))
