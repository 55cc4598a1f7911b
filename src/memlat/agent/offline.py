"""The governor configuration of a SoC, by the one path: probe an emulated CPUCP.

`programmed_governor(soc)` boots a fresh emulated CPUCP for the SoC, runs the agent's
probe sequence against it over the in-process transport (the same code `memlat probe`
runs), and returns what the firmware then holds as a `GovernorConfig`. Replay, the
simulator and the benches use it, so whatever they run is exactly what the wire would
have programmed: knobs a dialect does not send (BE_STALL_FLOOR and CONST_CYC in rfc2024,
optional knobs left unset) take the firmware defaults of decisions.md §2, and a command
the firmware refuses is an error, never silently different.
"""

from __future__ import annotations

from memlat.agent.probe import ProbeError, probe
from memlat.agent.session import make_agent
from memlat.config.model import SocConfig
from memlat.cpucp.boot import make_cpucp_platform
from memlat.governor.spec import GovernorConfig
from memlat.qcom.dialect import Dialect
from memlat.transports.inproc import InProcessTransport


def programmed_governor(soc: SocConfig, dialect: Dialect | str | None = None) -> GovernorConfig:
    """The GovernorConfig an emulated CPUCP holds after `soc` was probed in `dialect`
    (default: the SoC's own). Raises ProbeError naming the first refused command."""
    d = Dialect(dialect or soc.dialect)
    platform, service = make_cpucp_platform(soc.hardware())
    agent = make_agent(InProcessTransport(platform), d)
    try:
        result = probe(agent, soc, d, on_error="abort", discover=False)
    finally:
        agent.close()
    if result.failures or result.notes:
        raise ProbeError(f"{soc.name}: {result.summary()}", result)
    return service.governor_config()
