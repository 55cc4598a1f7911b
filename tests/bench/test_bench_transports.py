"""`memlat bench --suite transports` reports every figure issue 11 names, for each CPU
placement, with same-run bare baselines (no timing asserts: the figures are only
checked for presence and sanity)."""

from __future__ import annotations

import os

from memlat.bench.transports import placements, run


def test_placements_pin_a_pair_to_one_cpu_and_split_when_there_are_two() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    plans = placements()
    assert plans["same_cpu"] == ({cpus[0]}, {cpus[0]})
    assert ("split_cpu" in plans) == (len(cpus) >= 2)
    if "split_cpu" in plans:
        agent, platform = plans["split_cpu"]
        assert agent.isdisjoint(platform)


def test_quick_run_reports_ratios_per_placement_and_restores_affinity() -> None:
    before = os.sched_getaffinity(0)
    figures = run(quick=True)
    assert os.sched_getaffinity(0) == before  # the bench pinned itself only while measuring
    layouts = ["transports"] + (["transports_split_cpu"] if len(before) >= 2 else [])
    for layout in layouts:
        for name in ("shm", "unix"):
            values = figures[layout][name]
            assert values["roundtrips_per_s"] > 0 and values["bare_roundtrips_per_s"] > 0
            assert values["bare_pingpong_ratio"] == (
                values["bare_roundtrips_per_s"] / values["roundtrips_per_s"])
    assert figures["transports"]["inproc"]["bare_pingpong_ratio"] > 1  # real work vs a peer call
    assert figures["placement"]["same_cpu"]["agent_cpus"] == (
        figures["placement"]["same_cpu"]["platform_cpus"])
    assert set(figures["shm_doorbells_roundtrips_per_s"]) == {"eventfd", "pipe", "poll"}
