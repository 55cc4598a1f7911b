"""The "remote" devfreq governor: poll GET_CUR_FREQ and record what the firmware votes.

protocol.md §3.7: every `polling_ms = max(1, sample_ms // 2)` ms of platform time, each
bus (memory group) sends one GET_CUR_FREQ per monitor; the bus value is the maximum over
its monitors, in Hz (kHz x 1000) for DDR/LLCC, and for a level group (DDR_QOS) 100 Hz if
any monitor reports a non-zero level, else 1 Hz. The v8 client skips monitors whose GET
fails (warning once per monitor); only when every monitor fails does the read fail, and
then devfreq keeps the previous value (update_devfreq returns the error). The rfc2024
client had no readback; we poll it the same way (with its 128-byte rx_size).

Each successful read goes through `DevfreqDevice.record` (devfreq.py), which does the
kernel's trans_stat accounting; every change is also kept in `transitions`.

Decision (issue 12) - votes land on OPPs. The map rows carry memory frequencies in
whole MHz on the wire (protocol.md §4.3: v2 = mem kHz / 1000), so a monitor votes, and
GET_CUR_FREQ reports, e.g. 806000 kHz where the L3 ladder has 806400 kHz (sm8550,
sm8650). The firmware's DCVS layer runs the bus at the first table entry >= the vote
(algorithm.md §2.5), which is what devfreq_recommended_opp() (devfreq.c) picks for a
lower-bound request: dev_pm_opp_find_freq_ceil(), falling back to
dev_pm_opp_find_freq_floor() above the top OPP. `read()` applies it, so cur_freq and
trans_stat show the OPP the bus runs at; the value the firmware sent stays in
`Bus.raw_hz`. `snap_to_opp=False` keeps the literal v8 client (Hz = kHz x 1000), for
which devfreq then shows a non-OPP cur_freq and an empty trans_stat read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from memlat.agent.devfreq import DevfreqDevice, recommended_opp
from memlat.config.model import Group, SocConfig
from memlat.errors import TransportError
from memlat.qcom.codec import FreqReply, ScalarMsg
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import PROTOCOL_ID, ParamId
from memlat.qcom.request import request
from memlat.scmi.agent import Agent
from memlat.scmi.status import Status

log = logging.getLogger(__name__)

LEVEL_HIGH_HZ = 100  # synthetic DDR_QOS OPPs (protocol.md §3.2)
LEVEL_LOW_HZ = 1


def polling_interval_ms(sample_ms: int) -> int:
    """max(1, sample_ms / 2): the v7/v8 client's polling period (protocol.md §3.7)."""
    return max(1, sample_ms // 2)


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of a bus's recorded frequency (Hz) at platform time `time_ms`."""

    time_ms: int
    bus: str
    old_hz: int
    new_hz: int


@dataclass
class Bus:
    """One memory group seen as a devfreq device, plus the readback bookkeeping."""

    group: Group
    device: DevfreqDevice
    monitor_khz: list[int | None]
    warned: set[int] = field(default_factory=set)
    failed_reads: int = 0
    raw_hz: int | None = None  # the last bus value as the firmware reported it

    @property
    def name(self) -> str:
        """Device name: ddr, llcc, ddr-qos."""
        return self.group.name


@dataclass
class RemoteGovernor:
    """Polls the firmware over `agent` like the v8 devfreq client and records the values.

    Create with `RemoteGovernor.create(agent, soc, dialect, now_ms)` after a successful
    probe; call `poll(now_ms)` or `run(advance_to, until_ms)` as platform time advances.
    """

    agent: Agent
    dialect: Dialect
    polling_ms: int
    buses: list[Bus]
    next_poll_ms: int
    transitions: list[Transition] = field(default_factory=list)
    gets: int = 0
    snap_to_opp: bool = True

    @classmethod
    def create(cls, agent: Agent, soc: SocConfig, dialect: Dialect | str = Dialect.V8,
               now_ms: int = 0, *, snap_to_opp: bool = True) -> RemoteGovernor:
        """One devfreq device per group; initial_freq = min kHz x 1000 (level groups: 0).

        snap_to_opp: land each read on an OPP (module docstring), else report it raw.
        """
        d = Dialect(dialect)
        polling = polling_interval_ms(soc.sample_ms)
        buses = []
        for g in soc.groups:
            initial = 0 if g.is_level else g.min_value * 1000
            dev = DevfreqDevice.create(g.name, g.opp_hz(), polling, initial, now_ms)
            buses.append(Bus(g, dev, [None] * len(g.monitors)))
        return cls(agent, d, polling, buses, now_ms + polling, snap_to_opp=snap_to_opp)

    def bus(self, name: str) -> Bus:
        """The bus called `name` (ddr, llcc, ddr-qos or ddr_qos)."""
        for b in self.buses:
            if name in (b.name, b.group.key):
                return b
        raise KeyError(name)

    # -- one read -----------------------------------------------------------------------
    def get_cur_freq(self, hw_type: int, mon_idx: int) -> int | None:
        """One GET_CUR_FREQ: the monitor's target (kHz or level), None on any failure."""
        req = request(self.dialect, ParamId.GET_CUR_FREQ, ScalarMsg(hw_type, mon_idx, 0).pack(),
                      result_size=FreqReply.SIZE)
        self.gets += 1
        try:
            reply = self.agent.xfer(PROTOCOL_ID, req.message_id, req.payload,
                                    rx_size=req.rx_size)
        except TransportError as exc:
            log.debug("GET_CUR_FREQ hw %d mon %d: %s", hw_type, mon_idx, exc)
            return None
        if reply.status != Status.SUCCESS or len(reply.values) < FreqReply.SIZE:
            return None  # v8 qcom_scmi_common_xfer: short reply is -EPROTO
        return FreqReply.unpack(reply.values).value

    def read(self, bus: Bus) -> int | None:
        """get_cur_freq of one bus (Hz), or None when every monitor failed.

        With snap_to_opp the value is devfreq_recommended_opp(value, lower bound) on
        the bus's OPP table; the firmware's value is kept in bus.raw_hz.
        """
        values: list[int] = []
        for idx in range(len(bus.group.monitors)):
            value = self.get_cur_freq(bus.group.hw_type, idx)
            bus.monitor_khz[idx] = value
            if value is None:
                if idx not in bus.warned:
                    bus.warned.add(idx)
                    log.warning("%s: GET_CUR_FREQ of monitor %d failed; skipped", bus.name, idx)
                continue
            values.append(value)
        if not values:
            bus.failed_reads += 1
            return None
        if bus.group.is_level:
            hz = LEVEL_HIGH_HZ if any(values) else LEVEL_LOW_HZ
        else:
            hz = max(values) * 1000
        bus.raw_hz = hz
        if self.snap_to_opp:
            hz = recommended_opp(bus.device.stats.freq_table, hz)
        return hz

    # -- polling ------------------------------------------------------------------------
    def poll(self, now_ms: int) -> list[Transition]:
        """One devfreq_monitor() round over every bus at `now_ms`; returns the changes."""
        changes = []
        for bus in self.buses:
            hz = self.read(bus)
            if hz is None:
                continue  # update_devfreq failed: nothing recorded
            old = bus.device.stats.previous_freq
            if bus.device.record(hz, now_ms):
                changes.append(Transition(now_ms, bus.name, old, bus.device.stats.previous_freq))
        self.transitions += changes
        return changes

    def run(self, advance_to: Callable[[int], object], until_ms: int) -> list[Transition]:
        """Drive the platform and the polls together up to `until_ms`.

        advance_to(t) must bring the platform's simulated clock to t ms; each poll then
        sees the firmware state at its own scheduled time.
        """
        changes = []
        while self.next_poll_ms <= until_ms:
            advance_to(self.next_poll_ms)
            changes += self.poll(self.next_poll_ms)
            self.next_poll_ms += self.polling_ms
        advance_to(until_ms)
        return changes

    def devices(self) -> list[DevfreqDevice]:
        """The devfreq devices, in table order."""
        return [b.device for b in self.buses]
