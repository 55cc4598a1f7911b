"""The `memlat` policy: the emulated CPUCP firmware, programmed by our agent over SCMI.

This is the real system in one process (decisions.md §4, §5 `memlat run`):

1. `make_cpucp_platform(soc.hardware())` boots an emulated CPUCP (base protocol + QCOM 0x80)
   on a simulated clock, with a counter source we control;
2. our agent probes it over the in-process SMT transport from the SoC profile
   (memlat.agent.probe: the whole protocol.md §3.5 sequence, ending in START_TIMER);
3. every window the simulator's counters of the window just finished are handed to the
   counter source and the platform clock is advanced by one window; the CPUCP sampling
   loop pulls them, runs the governor, and notifies its vote subscribers;
4. the latest group votes (kHz; a 0/1 level for DDR-QoS) become the bus frequencies,
   snapped up to the bus ladder (the DCVS layer runs the lowest OPP >= the vote,
   algorithm.md §2.5).

Before the first vote the buses stay at their boot state, the top OPPs (decision,
docs/simulation.md). `backend="reference"` is a clearly separate fallback that steps
memlat.governor.reference.ReferenceGovernor on the governor view of the same profile,
without SCMI; it must give the same votes (tests/simrun check that).
"""

from __future__ import annotations

from typing import Literal

from memlat.agent.offline import programmed_governor
from memlat.agent.probe import check, probe
from memlat.config.model import SocConfig
from memlat.cpucp.boot import make_cpucp_platform
from memlat.errors import MemlatError
from memlat.governor.reference import ReferenceGovernor
from memlat.governor.spec import CounterWindow
from memlat.scmi.agent import Agent
from memlat.sim.policies import BusVote, Ladders, Observation, Policy
from memlat.transports.inproc import InProcessTransport

Backend = Literal["cpucp", "reference"]
_NS_PER_US = 1000


class _PendingSource:
    """CounterSource for the CPUCP sampling loop: hands over the last window once."""

    def __init__(self) -> None:
        self.pending: CounterWindow | None = None

    def window(self, now_ns: int, dt_us: int, ncpus: int) -> CounterWindow | None:
        """The window the simulator just produced, or None (the loop skips the window)."""
        w, self.pending = self.pending, None
        return w


class MemlatPolicy(Policy):
    """memlat as the firmware runs it (see the module docstring)."""

    name = "memlat"

    def __init__(self, ladders: Ladders, soc: SocConfig, *, backend: Backend = "cpucp",
                 dialect: str | None = None) -> None:
        super().__init__(ladders)
        self.soc = soc
        self.backend = backend
        self.dialect = dialect or soc.dialect
        self._kinds = {g.hw_type: g.key for g in soc.groups}
        self.probe_commands = 0
        self.reset()

    # -- set-up -------------------------------------------------------------------------
    def reset(self) -> None:
        """Boot a fresh platform and probe it (or a fresh reference governor)."""
        self._votes: dict[str, int] = {}
        self._clock_us = 0.0
        if self.backend == "reference":
            self._gov = ReferenceGovernor(programmed_governor(self.soc, self.dialect))
            return
        self._source = _PendingSource()
        platform, service = make_cpucp_platform(self.soc.hardware(), dialect=self.dialect,
                                                source=self._source)
        self._service = service
        service.subscribe(self._on_vote)
        self._agent = Agent(InProcessTransport(platform))
        result = check(probe(self._agent, self.soc, self.dialect))
        if result.state != "running":
            raise MemlatError(f"memlat policy: probe left the CPUCP {result.state}")
        self.probe_commands = len(result.sequence)

    def _on_vote(self, time_ns: int, hw_type: int, value: int) -> None:
        """Vote-change subscriber: remember the newest vote of each group."""
        key = self._kinds.get(hw_type)
        if key is not None:
            self._votes[key] = value

    # -- per window ---------------------------------------------------------------------
    def decide(self, obs: Observation) -> BusVote:
        """Feed the finished window to the firmware, let its clock reach now, read votes."""
        if obs.counters is not None:
            if self.backend == "reference":
                result = self._gov.step(obs.counters)
                for g, grp in enumerate(self._gov.config.groups):
                    self._votes[grp.name] = result.group_votes[g]
            else:
                self._source.pending = obs.counters
                step_us = obs.now_us - self._clock_us
                self._service.advance(round(step_us * _NS_PER_US))
                self._clock_us = obs.now_us
                self._source.pending = None
        top = self.ladders.top
        ddr = self._votes.get("ddr")
        llcc = self._votes.get("llcc")
        qos = self._votes.get("ddr_qos")
        return BusVote(
            top.ddr_mhz if ddr is None else self.ladders.ddr_up(ddr / 1000.0),
            top.llcc_mhz if llcc is None else self.ladders.llcc_up(llcc / 1000.0),
            top.ddr_qos if qos is None else int(qos),
        )

    def close(self) -> None:
        """Drop the platform (nothing runs in the background in simulated time)."""
        if self.backend == "cpucp":
            self._agent.close()
