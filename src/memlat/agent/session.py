"""An agent session: configuration + transport + agent, ready to probe and read back.

Used by `memlat probe` and `memlat devfreq show`. The `inproc` transport boots the
emulated CPUCP (memlat.cpucp.boot) in this process, driven by a simulated clock, so
the caller can advance platform time; other URIs reach a platform elsewhere
(memlat.transports.open_transport, decisions.md §5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memlat.agent.probe import RFC_MAX_MSG_SIZE, ErrorPolicy, ProbeResult, probe
from memlat.agent.readback import RemoteGovernor
from memlat.clock import SimClock
from memlat.config.model import SocConfig
from memlat.errors import ConfigError
from memlat.qcom.ids import Dialect
from memlat.scmi.agent import Agent

DEFAULT_SOC = "x1e80100"
NS_PER_MS = 1_000_000


def load_soc(soc: str | None, dts: Path | str | None, dialect: str | None) -> SocConfig:
    """The SocConfig named by --soc or read from --dts (default x1e80100)."""
    if soc and dts:
        raise ConfigError("give --soc or --dts, not both", source="memlat probe")
    from memlat.config import load_config

    return load_config(soc=None if dts else (soc or DEFAULT_SOC),
                       dts=str(dts) if dts else None, dialect=dialect)


@dataclass
class Session:
    """One agent talking to one platform about one SocConfig."""

    soc: SocConfig
    dialect: Dialect
    agent: Agent
    clock: SimClock | None = None
    service: Any = None  # the in-process CpucpService, when transport is inproc
    platform: Any = None
    result: ProbeResult | None = None
    extras: dict[str, Any] = field(default_factory=dict)
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


def make_agent(transport: Any, dialect: Dialect) -> Agent:
    """An Agent sized like the Linux of the dialect's era.

    rfc2024 asked rx_size 128, valid when the mailbox max_msg_size was 128 (before
    SCMI_SHMEM_MAX_PAYLOAD_SIZE = 104, protocol.md §4.1), so its agent allows 128.
    """
    from memlat.transports.uri import suggested_timeout_s

    agent = Agent(transport, timeout_s=suggested_timeout_s(transport))
    if dialect is Dialect.RFC2024:
        agent.max_msg_size = max(agent.max_msg_size, RFC_MAX_MSG_SIZE)
    return agent


def open_session(*, soc: str | SocConfig | None = None, dts: Path | str | None = None,
                 dialect: str | None = None, transport: str = "inproc",
                 source: Any = None) -> Session:
    """Load the configuration, open the transport (booting an emulated CPUCP for inproc).

    source: the counter source of the emulated firmware (None: idle CPUs).
    """
    cfg = soc if isinstance(soc, SocConfig) else load_soc(soc, dts, dialect)
    d = Dialect(dialect or cfg.dialect)
    clock = service = platform = None
    if transport == "inproc":
        from memlat.cpucp.boot import make_cpucp_platform
        from memlat.transports.inproc import InProcessTransport

        clock = SimClock()
        platform, service = make_cpucp_platform(cfg, clock=clock, source=source)
        tr: Any = InProcessTransport(platform)
    else:
        from memlat.transports.uri import open_transport

        tr = open_transport(transport)

        def reconnect() -> Agent:
            return make_agent(open_transport(transport), d)

        return Session(cfg, d, make_agent(tr, d), clock, service, platform,
                       reconnect=reconnect)
    return Session(cfg, d, make_agent(tr, d), clock, service, platform)
