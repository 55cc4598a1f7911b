"""Workload selection shared by `memlat run` and `memlat sweep`."""

from __future__ import annotations

import pytest

from memlat.errors import ConfigError
from memlat.sim.batch import select_workloads


def test_only_keeps_the_named_workloads_in_the_order_given():
    chosen = select_workloads(None, "video, compute", None)
    assert [w.name for w in chosen] == ["video", "compute"]


def test_unknown_workload_names_the_option_and_what_exists():
    with pytest.raises(ConfigError) as err:
        select_workloads(None, "compute,nosuch", None)
    assert err.value.location == "--only"
    assert "nosuch" in str(err.value) and "membench" in str(err.value)


def test_duration_shortens_every_workload_that_is_longer():
    full = {w.name: w for w in select_workloads(None, None, None)}
    short = select_workloads(None, "video", 1.0)[0]
    assert short.name == "video"
    assert short != full["video"]
