"""An agent session: configuration + transport + agent, ready to probe and read back.

Used by `memlat probe` and `memlat devfreq show`. The `inproc` transport boots the
emulated CPUCP (memlat.cpucp.boot) in this process, driven by a simulated clock, so
the caller can advance platform time; other URIs reach a platform elsewhere
(memlat.transports.open_transport, decisions.md §5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from memlat.agent.probe import ProbeResult, probe
from memlat.agent.readback import RemoteGovernor
from memlat.clock import SimClock
from memlat.config import load_config
from memlat.config.model import SocConfig
from memlat.cpucp.boot import make_cpucp_platform
from memlat.cpucp.sampling import CounterSource
from memlat.cpucp.service import CpucpService
from memlat.qcom.dialect import Dialect, ErrorPolicy
from memlat.scmi.agent import Agent
from memlat.scmi.platform import Platform
from memlat.scmi.transport import Transport
from memlat.transports.inproc import InProcessTransport
from memlat.transports.uri import open_transport, suggested_timeout_s

NS_PER_MS = 1_000_000


@dataclass
class Session:
    """One agent talking to one platform about one SocConfig."""

    soc: SocConfig
    dialect: Dialect
    agent: Agent
    clock: SimClock | None = None
    service: CpucpService | None = None  # the in-process CPUCP, when transport is inproc
    platform: Platform | None = None
    result: ProbeResult | None = None
    #: opens a new agent on the same platform (None for inproc): the probe's one retry
    #: of STOP_TIMER after a lost connection
    reconnect: Callable[[], Agent] | None = None

    @property
    def now_ms(self) -> int:
        """Platform time in ms (0 when the platform is remote)."""
        return 0 if self.clock is None else self.clock.now_ns() // NS_PER_MS

    def probe(self, on_error: ErrorPolicy | None = None) -> ProbeResult:
        """Run the probe (memlat.agent.probe.probe) and keep its result."""
        self.result = probe(self.agent, self.soc, self.dialect, on_error=on_error,
                            reconnect=self.reconnect)
        return self.result

    def advance_to(self, t_ms: int) -> None:
        """Bring the in-process platform's simulated clock to t_ms (runs due windows)."""
        if self.service is None or self.clock is None:
            return
        delta = t_ms * NS_PER_MS - self.clock.now_ns()
        if delta > 0:
            self.service.advance(delta)

    def governor(self) -> RemoteGovernor:
        """A remote-governor readback over this session's agent."""
        return RemoteGovernor.create(self.agent, self.soc, self.dialect, self.now_ms)

    def close(self) -> None:
        """Close the transport."""
        self.agent.close()


def make_agent(transport: Transport, dialect: Dialect) -> Agent:
    """An Agent sized like the Linux of the dialect's era.

    rfc2024 asked rx_size 128, valid when the mailbox max_msg_size was 128 (before
    SCMI_SHMEM_MAX_PAYLOAD_SIZE = 104, protocol.md §4.1), so its agent allows 128
    (`DialectRules.max_msg_size`).
    """
    agent = Agent(transport, timeout_s=suggested_timeout_s(transport))
    agent.max_msg_size = max(agent.max_msg_size, dialect.rules.max_msg_size)
    return agent


def open_session(*, soc: str | SocConfig | None = None, dts: Path | str | None = None,
                 dialect: str | None = None, transport: str = "inproc",
                 source: CounterSource | None = None) -> Session:
    """Load the configuration, open the transport (booting an emulated CPUCP for inproc).

    soc: a profile name, a YAML path or a SocConfig; dts: a device tree instead (with
    neither, the default profile). source: the counter source of the emulated firmware
    (None: idle CPUs). Raises ConfigError for a bad configuration or URI.
    """
    cfg = soc if isinstance(soc, SocConfig) else load_config(soc=soc, dts=dts,
                                                             dialect=dialect)
    d = Dialect(dialect or cfg.dialect)
    if transport == "inproc":
        clock = SimClock()
        platform, service = make_cpucp_platform(cfg.hardware(), clock=clock, source=source)
        return Session(cfg, d, make_agent(InProcessTransport(platform), d), clock, service,
                       platform)

    def reconnect() -> Agent:
        return make_agent(open_transport(transport), d)

    return Session(cfg, d, make_agent(open_transport(transport), d), reconnect=reconnect)
