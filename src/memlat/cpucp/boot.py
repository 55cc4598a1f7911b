"""`make_cpucp_platform`: an emulated CPUCP SCMI platform with base and protocol 0x80.

The base protocol comes from `memlat.scmi.protocols.base.make_platform(identity)`
(DISCOVER_VENDOR "Qualcomm" by default, protocol.md §1.4); the memlat service
(`CpucpService`) is registered on it as protocol 0x80.
"""

from __future__ import annotations

from typing import Any

from memlat.clock import Clock, SimClock
from memlat.cpucp.hardware import SocHardware
from memlat.cpucp.sampling import CounterSource
from memlat.cpucp.service import CpucpLimits, CpucpService
from memlat.qcom.ids import Dialect
from memlat.scmi.platform import Platform


def _soc_cpus(soc: Any) -> tuple[int | None, tuple[int, ...]]:
    """(ncpus, cluster_max_mhz) of a SoC profile (memlat.config SocConfig), duck-typed."""
    cpus = getattr(soc, "cpus", None)
    if cpus is None:
        return None, ()
    return len(cpus), tuple(int(getattr(c, "max_mhz", None) or 0) for c in cpus)


def make_cpucp_platform(identity: Any = None, dialect: Dialect | str | None = None,
                        counter_source: CounterSource | None = None,
                        clock: Clock | None = None, *, source: CounterSource | None = None,
                        soc: Any = None, ncpus: int | None = None,
                        cluster_max_mhz: tuple[int, ...] = (),
                        limits: CpucpLimits | None = None) -> tuple[Platform, CpucpService]:
    """A Platform with base (0x10) and the CPUCP memlat service (0x80), and the service.

    identity: a `PlatformIdentity` for the base protocol (None: its defaults, which
    advertise 0x80; an identity whose protocol list lacks 0x80 emulates a platform that
    does not implement it: 0x80 then answers NOT_SUPPORTED). A SoC
    profile (memlat.config SocConfig) may be passed instead, as `identity` or `soc`: it
    then gives ncpus and each CPU's cluster maximum (effective-frequency method 0).
    dialect: None accepts both algorithm strings; "v8" or "rfc2024" only that one.
    counter_source (alias source): where sampling windows come from (None: idle CPUs).
    clock: the platform clock (None: a new SimClock at 0).
    With a SoC profile the firmware also knows its hardware (memlat.cpucp.hardware):
    CPU masks beyond its CPUs, groups it lacks and frequencies outside its OPP limits
    are refused with INVALID_PARAMETERS (docs/cpucp.md).
    """
    if identity is not None and hasattr(identity, "cpus") and soc is None:
        soc, identity = identity, None
    hardware = None
    if soc is not None:
        if hasattr(soc, "groups") and hasattr(soc, "name"):
            hardware = SocHardware.from_soc(soc)
        soc_ncpus, soc_max = _soc_cpus(soc)
        ncpus = ncpus if ncpus is not None else soc_ncpus
        cluster_max_mhz = cluster_max_mhz or soc_max
    try:
        from memlat.scmi.protocols.base import make_platform
    except ImportError:  # base protocol not available: a bare platform with 0x80 only
        platform = Platform()
    else:
        platform = make_platform(identity)
    service = CpucpService(
        dialect=None if dialect is None else Dialect(dialect), limits=limits,
        clock=clock if clock is not None else SimClock(),
        counter_source=counter_source if counter_source is not None else source,
        ncpus=ncpus, cluster_max_mhz=cluster_max_mhz, hardware=hardware)
    platform.register(service)
    return platform, service
