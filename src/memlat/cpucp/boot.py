"""Boot the emulated CPUCP: an SCMI platform with base (0x10) and memlat (0x80).

The base protocol comes from `memlat.scmi.protocols.base_platform.make_platform(identity)`
(DISCOVER_VENDOR "Qualcomm" by default, protocol.md §1.4); the memlat service
(`CpucpService`) is registered on it as protocol 0x80.
"""

from __future__ import annotations

from memlat.clock import Clock, SimClock
from memlat.cpucp.hardware import CpucpHardware
from memlat.cpucp.sampling import CounterSource
from memlat.cpucp.service import CpucpService
from memlat.cpucp.state import CpucpLimits
from memlat.qcom.dialect import Dialect
from memlat.scmi.platform import Platform
from memlat.scmi.protocols.base_platform import make_platform
from memlat.scmi.protocols.identity import PlatformIdentity


def make_cpucp_platform(hardware: CpucpHardware | None = None, *,
                        identity: PlatformIdentity | None = None,
                        dialect: Dialect | str | None = None,
                        source: CounterSource | None = None,
                        clock: Clock | None = None,
                        limits: CpucpLimits | None = None
                        ) -> tuple[Platform, CpucpService]:
    """A Platform with base (0x10) and the CPUCP memlat service (0x80), and the service.

    hardware: what the firmware knows of its SoC (`SocConfig.hardware()` builds it from a
    profile; None: CPU count from the programmed masks, default bus names). With
    `SocConfig.hardware(enforce_limits=True)` (the served platform) configurations for
    another part are refused (docs/cpucp.md).
    identity: the base protocol's `PlatformIdentity` (None: its defaults, which advertise
    0x80; an identity whose protocol list lacks 0x80 emulates a platform that does not
    implement it: 0x80 then answers NOT_SUPPORTED).
    dialect: None accepts both algorithm strings; "v8" or "rfc2024" only that one.
    source: where sampling windows come from (None: idle CPUs).
    clock: the platform clock (None: a new SimClock at 0).
    """
    platform = make_platform(identity)
    service = CpucpService(
        dialect=None if dialect is None else Dialect(dialect), limits=limits,
        clock=clock if clock is not None else SimClock(), counter_source=source,
        hardware=hardware)
    platform.register(service)
    return platform, service
