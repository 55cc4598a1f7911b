"""SocConfig semantic validation (one test per error class) and the governor conversion."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memlat.agent.offline import programmed_governor as governor_config
from memlat.config import load_profile, parse_soc
from memlat.errors import ConfigError
from memlat.governor import spec


def hamoa() -> dict[str, Any]:
    """The x1e80100 profile as plain data, to break one field at a time."""
    return copy.deepcopy(load_profile("x1e80100").model_dump())


def refused(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        parse_soc(data, source="test.yaml")
    assert err.value.source == "test.yaml"
    return err.value


def test_non_ascending_rows_refused_in_v8_kept_with_warning_in_rfc2024() -> None:
    data = hamoa()
    data["groups"][0]["monitors"][0]["map"][4] = (2156, 3187)  # the RFC DT's row
    err = refused(data)
    assert err.location == "groups[0].monitors[0].map[4].cpu_mhz"
    assert "row 3 has 2189, row 4 has 2156" in str(err)
    data["dialect"] = "rfc2024"
    soc = parse_soc(data)
    assert soc.monitors()[0][2].map[4] == (2156, 3187)  # kept verbatim for the wire
    assert len(soc.warnings) == 1 and "kept for rfc2024 fidelity" in soc.warnings[0]


def test_monitor_cpu_outside_group_mask() -> None:
    data = hamoa()
    data["groups"][1]["cpus"] = 0x0FF
    err = refused(data)
    assert err.location == "groups[1].monitors[2].cpus"
    assert "outside group 'llcc' cpumask 0xff" in str(err) and "[8, 9, 10, 11]" in str(err)


def test_monitor_cpu_outside_soc() -> None:
    data = hamoa()
    data["groups"][0]["monitors"][3]["cpus"] = 0x1FFF
    err = refused(data)
    assert err.location == "groups[0].monitors[3].cpus"
    assert "CPUs [12] outside the SoC's 12 CPUs" in str(err)


def test_map_frequency_outside_ladder() -> None:
    data = hamoa()
    data["groups"][1]["monitors"][0]["map"][5] = (3860, 1211)
    err = refused(data)
    assert err.location == "groups[1].monitors[0].map[5].mem"
    assert "1211 MHz is outside group 'llcc' ladder range 300..1066 MHz" in str(err)


def test_level_group_values_are_0_or_1() -> None:
    data = hamoa()
    data["groups"][2]["monitors"][1]["map"][1] = (3860, 2)
    assert refused(data).location == "groups[2].monitors[1].map[1].mem"
    data = hamoa()
    data["groups"][2]["ladder"] = [0, 1, 2]
    assert refused(data).location == "groups[2].ladder"


def test_too_many_rows_per_dialect() -> None:
    data = hamoa()
    rows = [(1000 + 100 * i, 547) for i in range(11)]
    data["groups"][0]["monitors"][0]["map"] = rows
    err = refused(data)
    assert err.location == "groups[0].monitors[0].map"
    assert "11 map rows, v8 allows at most 10" in str(err)
    data["groups"][0]["monitors"][0]["map"] = rows[:7]
    data["dialect"] = "rfc2024"
    assert "7 map rows, rfc2024 allows at most 6" in str(refused(data))


def test_too_many_monitors_and_groups() -> None:
    data = hamoa()
    mons = data["groups"][0]["monitors"]
    mons.append(copy.deepcopy(mons[0]))
    mons.append(copy.deepcopy(mons[0]))
    err = refused(data)
    assert err.location == "groups[0].monitors" and "6 monitors" in str(err)
    data = hamoa()
    for hw in (5, 6):
        extra = copy.deepcopy(data["groups"][1])
        extra["hw_type"], extra["name"] = hw, f"bus{hw}"
        data["groups"].append(extra)
    assert "5 groups, the firmware takes at most 4" in str(refused(data))


def test_min_above_max_and_outside_ladder() -> None:
    data = hamoa()
    data["groups"][0]["min"] = 5000000
    err = refused(data)
    assert err.location == "groups[0].min" and "above max" in str(err)
    data = hamoa()
    data["groups"][1]["max"] = 1067000
    err = refused(data)
    assert err.location == "groups[1].max" and "outside the ladder" in str(err)


def test_compute_flag_and_ipm_ceil_must_agree() -> None:
    data = hamoa()
    data["groups"][0]["monitors"][3]["ipm_ceil"] = 400
    assert refused(data).location == "groups[0].monitors[3].ipm_ceil"
    data = hamoa()
    data["groups"][0]["monitors"][0]["ipm_ceil"] = 0
    assert "ipm_ceil 0 means a compute monitor" in str(refused(data))


def test_pydantic_type_errors_name_the_field() -> None:
    data = hamoa()
    data["groups"][0]["monitors"][1]["cpus"] = "0xZZ"
    assert refused(data).location == "groups[0].monitors[1].cpus"
    data = hamoa()
    data["groups"][0]["monitors"][1]["colour"] = "red"
    assert refused(data).location == "groups[0].monitors[1].colour"
    data = hamoa()
    data["groups"][0]["monitors"][0]["name"] = "a-very-long-monitor-name"
    assert "at most 19 bytes" in str(refused(data))


def test_cpumask_accepts_cpu_lists() -> None:
    data = hamoa()
    data["groups"][0]["monitors"][1]["cpus"] = [4, 5, 6, 7]
    assert parse_soc(data).groups[0].monitors[1].cpumask == 0xF0


def test_governor_config_of_hamoa() -> None:
    gov = governor_config(load_profile("x1e80100"))
    assert gov.ncpus == 12 and gov.sample_ms == 4 and gov.method == 1
    assert gov.common == spec.CommonEvents(2, 0, 1, 0xFF, 3)
    assert [g.name for g in gov.groups] == ["ddr", "llcc", "ddr_qos"]
    ddr0 = gov.groups[0].monitors[0]
    assert (ddr0.cpumask, ddr0.min_freq, ddr0.max_freq, ddr0.ipm_ceil, ddr0.be_stall_floor) == (
        0xF, 200000, 4224000, 20000000, 1)
    assert ddr0.map_rows[0] == (999, 547) and ddr0.name == "mon_0"
    # knobs the agent never sends keep the firmware defaults (decisions.md §2)
    assert (ddr0.wb_pct, ddr0.ipm_filter, ddr0.freq_scale_pct) == (100, 25000, 0)
    assert gov.groups[0].monitors[3].compute and gov.groups[2].is_level
    assert gov.cluster_max_mhz == (3860,) * 12


def test_governor_config_follows_the_dialect() -> None:
    gov = governor_config(load_profile("x1e80100"), dialect="rfc2024")
    mon = gov.groups[0].monitors[0]
    assert mon.be_stall_floor == spec.DEFAULT_BE_STALL_FLOOR  # never sent by rfc2024
    assert mon.name == "monitor-0"
    assert gov.common.const_cyc == spec.UNUSED_EVENT
    kalama = governor_config(load_profile("sm8550"))
    prime = kalama.groups[0].monitors[2]
    assert (prime.freq_scale_pct, prime.freq_scale_floor_mhz, prime.freq_scale_ceil_mhz) == (
        25, 1500, 2726)
    assert [g.miss_event for g in kalama.groups] == [8, 6, 4, 8]


@given(st.lists(st.integers(1, 4000), min_size=1, max_size=10, unique=True),
       st.lists(st.integers(200, 4224), min_size=10, max_size=10))
def test_any_valid_map_round_trips_through_plain_data(cpus: list[int], mems: list[int]) -> None:
    data = hamoa()
    rows = list(zip(sorted(cpus), mems, strict=False))
    data["groups"][0]["monitors"][0]["map"] = rows
    soc = parse_soc(data)
    assert soc.groups[0].monitors[0].map == rows
    assert parse_soc(soc.model_dump()) == soc
    assert governor_config(soc).groups[0].monitors[0].map_rows == tuple(rows)
