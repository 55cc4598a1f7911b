"""Variants of a SoC profile for sweeps and experiments: the knobs `memlat sweep` turns.

Every variant is a new, re-validated `SocConfig`, so the agent programs it over SCMI
exactly like a shipped profile (and a variant the firmware would refuse is refused here
with a ConfigError naming the field).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from memlat.config.model import SocConfig, parse_soc


@dataclass(frozen=True, slots=True)
class Tunables:
    """Knobs applied to every IPM (non-compute) monitor of every group.

    ipm_ceil: replaces IPM_CEIL; map_scale: multiplies the mem MHz of every map row of the
    frequency groups (clamped to the group's ladder range; level groups untouched);
    sample_ms: the sampling period; boost_pct: FREQ_SCALE_PCT (the frequency boost,
    algorithm.md §2.1), with the boost band opened to [0, 5000] MHz when set;
    maps_at_max: every map row of the frequency groups votes the group maximum.
    None leaves the profile's value.
    """

    ipm_ceil: int | None = None
    map_scale: float | None = None
    sample_ms: int | None = None
    boost_pct: int | None = None
    maps_at_max: bool = False

    def label(self) -> str:
        """Short text naming the knobs that are set, e.g. `ipm_ceil=400,map_scale=0.5`."""
        parts = [f"{k}={getattr(self, k)}" for k in ("ipm_ceil", "map_scale", "sample_ms",
                                                      "boost_pct") if getattr(self, k) is not None]
        if self.maps_at_max:
            parts.append("maps_at_max")
        return ",".join(parts) or "profile"


def tune_soc(soc: SocConfig, tun: Tunables) -> SocConfig:
    """A copy of `soc` with `tun` applied (see Tunables)."""
    data = soc.model_dump()
    if tun.sample_ms is not None:
        data["sample_ms"] = tun.sample_ms
    for g_data, group in zip(data["groups"], soc.groups, strict=True):
        lo_mhz, hi_mhz = group.map_range()
        for m_data in g_data["monitors"]:
            if m_data["compute"]:
                continue
            if tun.ipm_ceil is not None:
                m_data["ipm_ceil"] = tun.ipm_ceil
            if tun.boost_pct is not None:
                m_data["freq_scale_pct"] = tun.boost_pct
                m_data["freq_scale_floor_mhz"] = 0
                m_data["freq_scale_ceil_mhz"] = 5000
            if group.is_level:
                if tun.maps_at_max:
                    m_data["map"] = [(cpu, group.max_value) for cpu, _ in m_data["map"]]
                continue
            if tun.maps_at_max:
                top = group.max_value // 1000
                m_data["map"] = [(cpu, top) for cpu, _ in m_data["map"]]
            elif tun.map_scale is not None:
                m_data["map"] = [(cpu, min(hi_mhz, max(lo_mhz, math.ceil(mem * tun.map_scale))))
                                 for cpu, mem in m_data["map"]]
        if tun.maps_at_max:
            # compute monitors too: "forced to max" means every monitor votes the top
            for m_data in g_data["monitors"]:
                if m_data["compute"] and not group.is_level:
                    m_data["map"] = [(cpu, group.max_value // 1000) for cpu, _ in m_data["map"]]
    return parse_soc(data, source=f"{soc.name} tuned ({tun.label()})")
