"""SocConfig -> governor.spec.GovernorConfig: the firmware's view of a profile.

The result is what the emulated CPUCP would hold after our agent probed it in the SoC's
dialect, so replay and simulation run exactly the profile: knobs the dialect does not send
(BE_STALL_FLOOR and CONST_CYC in rfc2024, optional knobs left unset) take the firmware
defaults of decisions.md §2.
"""

from __future__ import annotations

from memlat.config.model import Group, Monitor, SocConfig
from memlat.governor import spec


def _monitor(soc: SocConfig, group: Group, idx: int, mon: Monitor,
             dialect: str) -> spec.MonitorSpec:
    def opt(value: int | None, default: int) -> int:
        return default if value is None else value

    return spec.MonitorSpec(
        # static hardware masks may name absent CPUs (protocol.md §5 point 7): they have
        # no counters, so the governor never sees them.
        cpumask=mon.cpus & soc.possible_mask,
        map_rows=tuple((int(c), int(v)) for c, v in mon.map),
        min_freq=group.min_value,
        max_freq=group.max_value,
        compute=mon.compute,
        ipm_ceil=mon.ipm,
        fe_stall_floor=opt(mon.fe_stall_floor, spec.DEFAULT_FE_STALL_FLOOR),
        be_stall_floor=mon.be_floor if dialect == "v8" else spec.DEFAULT_BE_STALL_FLOOR,
        wb_pct=opt(mon.wb_pct, spec.DEFAULT_WB_PCT),
        ipm_filter=opt(mon.ipm_filter, spec.DEFAULT_IPM_FILTER),
        freq_scale_pct=opt(mon.freq_scale_pct, spec.DEFAULT_FREQ_SCALE_PCT),
        freq_scale_floor_mhz=opt(mon.freq_scale_floor_mhz, spec.DEFAULT_FREQ_SCALE_FLOOR_MHZ),
        freq_scale_ceil_mhz=opt(mon.freq_scale_ceil_mhz, spec.DEFAULT_FREQ_SCALE_CEIL_MHZ),
        name=mon.wire_name(idx, dialect),
    )


def cluster_max_mhz(soc: SocConfig) -> tuple[int, ...]:
    """Per-CPU cluster maximum MHz: the profile value, else the highest CPU MHz of the
    maps whose monitors cover that CPU (0 when none does)."""
    out = []
    for cpu in soc.cpus:
        if cpu.max_mhz is not None:
            out.append(cpu.max_mhz)
            continue
        covering = [row[0] for _, _, m in soc.monitors() if m.cpus >> cpu.id & 1 for row in m.map]
        out.append(max(covering, default=0))
    return tuple(out)


def governor_config(soc: SocConfig, dialect: str | None = None) -> spec.GovernorConfig:
    """The GovernorConfig the firmware holds after a probe of `soc` in `dialect`
    (default: the SoC's own dialect). Group names are result keys (ddr_qos)."""
    d = dialect or soc.dialect
    if d != soc.dialect:
        soc = soc.with_dialect(d)
    c = soc.common_events
    common = spec.CommonEvents(
        inst=c.inst, cyc=c.cyc,
        const_cyc=c.const_cyc if d == "v8" else spec.UNUSED_EVENT,
        fe_stall=c.fe_stall, be_stall=c.be_stall,
    )
    groups = tuple(
        spec.GroupSpec(
            hw_type=g.hw_type,
            name=g.key,
            monitors=tuple(_monitor(soc, g, i, m, d) for i, m in enumerate(g.monitors)),
            miss_event=g.events.miss,
            wb_event=g.events.wb,
            acc_event=g.events.acc,
            adaptive_low_khz=g.adaptive_low_khz or 0,
            adaptive_high_khz=g.adaptive_high_khz or 0,
        )
        for g in soc.groups
    )
    return spec.GovernorConfig(
        ncpus=soc.ncpus,
        groups=groups,
        common=common,
        sample_ms=soc.sample_ms,
        # rfc2024 never sends the method: the firmware default applies (decisions.md §2)
        method=soc.freq_method if d == "v8" else spec.DEFAULT_METHOD,
        cluster_max_mhz=cluster_max_mhz(soc),
    )
