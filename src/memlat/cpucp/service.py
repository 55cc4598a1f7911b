"""The emulated CPUCP memlat service: protocol 0x80 on the platform side.

It keeps what the agent programs (groups, monitors, event maps, per-monitor tunables,
sample_ms, method, running flag), validates every command with the statuses of
protocol.md §2.4, answers the GET paths, and drives a `SamplingLoop` while started.

Rules (docs/cpucp.md explains each decision):
* a command is validated completely before anything is stored; a refused command
  leaves the state unchanged (the state is one immutable `CpucpSnapshot`, replaced
  whole on success);
* only the bytes a struct needs are read; longer payloads are accepted, unused map
  rows, name tails and event slots past num_evs are never looked at (decisions.md §1);
* the algorithm string picks the dialect of each message ("MEMLAT" v8, "memlat"
  rfc2024); a platform accepts both unless built for one;
* nothing a caller sends makes a handler raise: short payloads get a status.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from memlat.clock import Clock, SimClock
from memlat.cpucp.hardware import SocHardware
from memlat.cpucp.sampling import CounterSource, SamplingLoop, VoteSubscriber
from memlat.errors import DecodeError
from memlat.governor.spec import (
    DEFAULT_BE_STALL_FLOOR,
    DEFAULT_FE_STALL_FLOOR,
    DEFAULT_FREQ_SCALE_CEIL_MHZ,
    DEFAULT_FREQ_SCALE_FLOOR_MHZ,
    DEFAULT_FREQ_SCALE_PCT,
    DEFAULT_IPM_FILTER,
    DEFAULT_METHOD,
    DEFAULT_SAMPLE_MS,
    DEFAULT_WB_PCT,
    N_COUNTERS,
    UNUSED_EVENT,
    CommonEvents,
    GovernorConfig,
    GroupSpec,
    MonitorSpec,
)
from memlat.qcom.codec import (
    EvMapMsg,
    FreqMethod,
    FreqReply,
    GetAdaptiveCurFreq,
    MapMsg,
    NodeMsg,
    SampleMs,
    ScalarMsg,
    Timestamp,
    decode_request,
)
from memlat.qcom.ids import (
    GROUP_HW_TYPES,
    PROTOCOL_ID,
    PROTOCOL_VERSION,
    Dialect,
    HwType,
    ParamId,
    QcomMessage,
    message_for,
)
from memlat.scmi.platform import CallContext, Command, ProtocolHandler, Reply
from memlat.scmi.status import Status
from memlat.wire import Reader

U32_MAX = 0xFFFF_FFFF


@dataclass(frozen=True, slots=True)
class CpucpLimits:
    """Limits of the emulated firmware (decisions.md §2; protocol.md §5.8 says the real
    ones are unknown). strict_map_order refuses MON_FREQ_MAP rows whose CPU MHz is not
    strictly ascending (algorithm.md §2.2 "the rows must be ascending")."""

    max_groups: int = 4
    max_monitors: int = 5
    max_map_rows: int = 10
    max_common_events: int = 5
    max_group_events: int = 3
    strict_map_order: bool = True


@dataclass(frozen=True, slots=True)
class MonitorState:
    """One programmed monitor. Units: ipm_ceil/ipm_filter instructions per miss;
    *_stall_floor, wb_pct, freq_scale_pct percent; freq_scale_* MHz; map rows (cpu MHz,
    mem MHz or level); min_freq/max_freq kHz or level. A monitor nobody has given a
    min/max is unclamped: 0 .. 0xFFFFFFFF."""

    mon_idx: int
    cpumask: int
    mon_type: int = 0
    name: str = ""
    ipm_ceil: int = 0
    fe_stall_floor: int = DEFAULT_FE_STALL_FLOOR
    be_stall_floor: int = DEFAULT_BE_STALL_FLOOR
    wb_pct: int = DEFAULT_WB_PCT
    ipm_filter: int = DEFAULT_IPM_FILTER
    freq_scale_pct: int = DEFAULT_FREQ_SCALE_PCT
    freq_scale_ceil_mhz: int = DEFAULT_FREQ_SCALE_CEIL_MHZ
    freq_scale_floor_mhz: int = DEFAULT_FREQ_SCALE_FLOOR_MHZ
    map_rows: tuple[tuple[int, int], ...] = ()
    min_freq: int = 0
    max_freq: int = U32_MAX


@dataclass(frozen=True, slots=True)
class GroupState:
    """One programmed memory group. events: the counted slots of its GRP_EV_MAP
    (miss, wb, acc), None before one arrives; adaptive_* kHz; cpumask 0 = any CPU."""

    hw_type: int
    cpumask: int
    events: tuple[int, ...] | None = None
    adaptive_low_khz: int = 0
    adaptive_high_khz: int = 0
    monitors: tuple[MonitorState, ...] = ()

    @property
    def name(self) -> str:
        """ddr, llcc, ddr_qos or ddr_qos_mobile."""
        return HwType.label(self.hw_type)


@dataclass(frozen=True, slots=True)
class CpucpSnapshot:
    """The whole programmed configuration plus the running flag.

    common_events: the counted slots of the COMMON_EV_MAP, in the slot order of
    common_dialect (protocol.md §2.3: the RFC had 4 slots without CONST_CYC), None
    before one arrives.
    """

    groups: tuple[GroupState, ...] = ()
    common_events: tuple[int, ...] | None = None
    common_dialect: Dialect = Dialect.V8
    sample_ms: int = DEFAULT_SAMPLE_MS
    method: int = DEFAULT_METHOD
    running: bool = False

    def group(self, hw_type: int) -> GroupState | None:
        """The group with this hw_type, or None."""
        for grp in self.groups:
            if grp.hw_type == hw_type:
                return grp
        return None

    def monitor(self, hw_type: int, mon_idx: int) -> MonitorState | None:
        """Monitor mon_idx of group hw_type, or None."""
        grp = self.group(hw_type)
        if grp is None or mon_idx >= len(grp.monitors):
            return None
        return grp.monitors[mon_idx]


class Refused(Exception):
    """Raised inside a handler to refuse the command with `status`."""

    def __init__(self, status: Status, why: str) -> None:
        super().__init__(f"{status.name}: {why}")
        self.status = status
        self.why = why


# Scalar params that set one monitor field (protocol.md §2.4).
_MONITOR_FIELDS: dict[int, str] = {
    ParamId.IPM_CEIL: "ipm_ceil",
    ParamId.FE_STALL_FLOOR: "fe_stall_floor",
    ParamId.BE_STALL_FLOOR: "be_stall_floor",
    ParamId.WB_PCT: "wb_pct",
    ParamId.IPM_FILTER: "ipm_filter",
    ParamId.FREQ_SCALE_PCT: "freq_scale_pct",
    ParamId.FREQ_SCALE_CEIL_MHZ: "freq_scale_ceil_mhz",
    ParamId.FREQ_SCALE_FLOOR_MHZ: "freq_scale_floor_mhz",
    ParamId.SET_MIN_FREQ: "min_freq",
    ParamId.SET_MAX_FREQ: "max_freq",
}
_GROUP_FIELDS: dict[int, str] = {
    ParamId.ADAPTIVE_LOW_FREQ: "adaptive_low_khz",
    ParamId.ADAPTIVE_HIGH_FREQ: "adaptive_high_khz",
}

SetHandler = Callable[[CpucpSnapshot, bytes, Dialect], CpucpSnapshot]


def _replace_group(state: CpucpSnapshot, group: GroupState) -> CpucpSnapshot:
    groups = tuple(group if g.hw_type == group.hw_type else g for g in state.groups)
    return dataclasses.replace(state, groups=groups)


def _replace_monitor(state: CpucpSnapshot, hw_type: int, mon: MonitorState) -> CpucpSnapshot:
    grp = state.group(hw_type)
    assert grp is not None
    monitors = tuple(mon if m.mon_idx == mon.mon_idx else m for m in grp.monitors)
    return _replace_group(state, dataclasses.replace(grp, monitors=monitors))


def _head_u32s(body: bytes, *names: str) -> tuple[int, ...]:
    r = Reader(body, base=16)
    return tuple(r.u32(n) for n in names)


def _check_event_ids(events: tuple[int, ...]) -> None:
    for i, cid in enumerate(events):
        if cid != UNUSED_EVENT and not 0 <= cid < N_COUNTERS:
            raise Refused(Status.INVALID_PARAMETERS,
                          f"event slot {i} names unknown counter {cid:#x}")


class CpucpService(ProtocolHandler):
    """Protocol 0x80 with the MEMLAT algorithm, as the CPUCP firmware would run it.

    dialect None accepts both algorithm strings; a Dialect accepts only its own (the
    other gets NOT_SUPPORTED like any unknown algorithm). ncpus None derives the CPU
    count from the highest bit of any programmed cpumask. cluster_max_mhz[c] feeds the
    effective-frequency method 0. hardware (memlat.cpucp.hardware) makes the firmware
    refuse CPUs, groups and frequencies its SoC does not have (INVALID_PARAMETERS).
    """

    protocol_id = PROTOCOL_ID
    version = PROTOCOL_VERSION

    def __init__(self, *, dialect: Dialect | None = None, limits: CpucpLimits | None = None,
                 clock: Clock | None = None, counter_source: CounterSource | None = None,
                 ncpus: int | None = None, cluster_max_mhz: tuple[int, ...] = (),
                 num_agents: int = 1, hardware: SocHardware | None = None) -> None:
        self.dialects = frozenset(Dialect) if dialect is None else frozenset({Dialect(dialect)})
        self.limits = limits or CpucpLimits()
        self.clock: Clock = clock if clock is not None else SimClock()
        self.ncpus = ncpus
        self.cluster_max_mhz = tuple(cluster_max_mhz)
        self.num_agents = num_agents
        self.hardware = hardware
        self.lock = threading.RLock()
        self.sampler = SamplingLoop(self.clock, counter_source, lock=self.lock)
        self._state = CpucpSnapshot()
        #: (message, param label, status, reason) of refused commands, newest last
        self.refusals: list[tuple[str, str, int, str]] = []
        self._set_handlers: dict[int, SetHandler] = {
            ParamId.SET_MEM_GROUP: self._set_mem_group,
            ParamId.SET_MONITOR: self._set_monitor,
            ParamId.SET_COMMON_EV_MAP: self._set_common_ev_map,
            ParamId.SET_GRP_EV_MAP: self._set_grp_ev_map,
            ParamId.SAMPLE_MS: self._set_sample_ms,
            ParamId.MON_FREQ_MAP: self._set_map,
            ParamId.SET_EFFECTIVE_FREQ_METHOD: self._set_method,
        }
        for pid in (*_MONITOR_FIELDS, *_GROUP_FIELDS):
            self._set_handlers[pid] = self._scalar_handler(pid)

    # -- ProtocolHandler --------------------------------------------------------------
    def commands(self) -> Mapping[int, Command]:
        """SET/GET/START/STOP, each with a variable-length payload and attributes 0."""
        return {
            QcomMessage.SET_PARAM: Command(self._on_set, sizes=None),
            QcomMessage.GET_PARAM: Command(self._on_get, sizes=None),
            QcomMessage.START_ACTIVITY: Command(self._on_start, sizes=None),
            QcomMessage.STOP_ACTIVITY: Command(self._on_stop, sizes=None),
        }

    def attributes(self, ctx: CallContext) -> int:
        """[15:8] number of agents (the base protocol's, when registered), [7:0] number
        of algorithm strings accepted (protocol.md §2.1)."""
        agents = self.num_agents
        base = ctx.platform.handlers.get(0x10)
        if base is not None and base is not self:
            try:
                agents = base.attributes(ctx) >> 8 & 0xFF
            except Exception:  # a base without attributes keeps our own count
                agents = self.num_agents
        return (agents & 0xFF) << 8 | len(self.dialects)

    # -- public readback --------------------------------------------------------------
    def snapshot(self) -> CpucpSnapshot:
        """The whole configuration and running flag (immutable)."""
        with self.lock:
            return self._state

    def cur_freq(self, hw_type: int, mon_idx: int) -> int | None:
        """What GET_CUR_FREQ answers, None for an unknown monitor."""
        with self.lock:
            mon = self._state.monitor(hw_type, mon_idx)
            if mon is None:
                return None
            target = self.sampler.cur_freq(hw_type, mon_idx)
            # before the monitor's first window: its min_freq (docs/cpucp.md)
            return mon.min_freq if target is None else target

    def group_vote(self, hw_type: int) -> int | None:
        """The group's last vote, None before its first window."""
        return self.sampler.group_vote(hw_type)

    def subscribe(self, callback: VoteSubscriber) -> None:
        """Call callback(time_ns, hw_type, value) on every group vote change."""
        self.sampler.subscribe(callback)

    def advance(self, ns: int) -> int:
        """Simulated time: advance the SimClock, running due windows. Returns windows run."""
        return self.sampler.advance(ns)

    def governor_config(self) -> GovernorConfig:
        """The programmed state as the governor's configuration."""
        with self.lock:
            return self._build_config(self._state)

    def _ncpus(self, state: CpucpSnapshot) -> int:
        if self.ncpus is not None:
            return self.ncpus
        masks = [g.cpumask for g in state.groups]
        masks += [m.cpumask for g in state.groups for m in g.monitors]
        return max([1, *(mask.bit_length() for mask in masks)])

    def _build_config(self, state: CpucpSnapshot) -> GovernorConfig:
        if state.common_events is None:
            common = CommonEvents()
        else:
            order = state.common_dialect.common_event_order
            slots = dict.fromkeys(("inst", "cyc", "const_cyc", "fe_stall", "be_stall"),
                                  UNUSED_EVENT)
            slots.update(zip(order, state.common_events, strict=False))
            common = CommonEvents(**slots)
        groups = []
        for grp in state.groups:
            events = (grp.events or ()) + (UNUSED_EVENT,) * 3
            monitors = tuple(
                MonitorSpec(
                    cpumask=m.cpumask, map_rows=m.map_rows, min_freq=m.min_freq,
                    max_freq=m.max_freq, compute=m.mon_type == 1, ipm_ceil=m.ipm_ceil,
                    fe_stall_floor=m.fe_stall_floor, be_stall_floor=m.be_stall_floor,
                    wb_pct=m.wb_pct, ipm_filter=m.ipm_filter,
                    freq_scale_pct=m.freq_scale_pct,
                    freq_scale_floor_mhz=m.freq_scale_floor_mhz,
                    freq_scale_ceil_mhz=m.freq_scale_ceil_mhz, name=m.name)
                for m in grp.monitors)
            groups.append(GroupSpec(
                hw_type=grp.hw_type, name=grp.name, monitors=monitors,
                miss_event=events[0], wb_event=events[1], acc_event=events[2],
                adaptive_low_khz=grp.adaptive_low_khz,
                adaptive_high_khz=grp.adaptive_high_khz))
        return GovernorConfig(ncpus=self._ncpus(state), groups=tuple(groups), common=common,
                              sample_ms=state.sample_ms, method=state.method,
                              cluster_max_mhz=self.cluster_max_mhz)

    # -- dispatch ---------------------------------------------------------------------
    def _decode(self, kind: QcomMessage, payload: bytes) -> tuple[int, bytes, Dialect]:
        """Header checks common to all four commands (protocol.md §2.2, §2.4)."""
        try:
            header, body = decode_request(payload)
        except DecodeError as exc:
            raise Refused(Status.PROTOCOL_ERROR, str(exc)) from None
        dialect = Dialect.for_algorithm(header.algo)
        if dialect is None or dialect not in self.dialects:
            raise Refused(Status.NOT_SUPPORTED, f"unknown algorithm {header.algo:#x}")
        if message_for(header.param_id) != kind:
            raise Refused(Status.NOT_SUPPORTED,
                          f"{ParamId.label(header.param_id)} is not a {kind.name} param")
        return header.param_id, body, dialect

    def _run(self, kind: QcomMessage, payload: bytes,
             action: Callable[[int, bytes, Dialect], Reply]) -> Reply:
        with self.lock:
            param = "?"
            try:
                param_id, body, dialect = self._decode(kind, payload)
                param = ParamId.label(param_id)
                return action(param_id, body, dialect)
            except Refused as exc:
                self.refusals.append((kind.name, param, int(exc.status), exc.why))
                del self.refusals[:-256]
                return Reply.error(exc.status)

    def _commit(self, state: CpucpSnapshot) -> None:
        old = self._state
        self._state = state
        if state.running and state != old:
            self.sampler.reconfigure(self._build_config(state))

    def _on_set(self, ctx: CallContext, payload: bytes) -> Reply:
        def action(param_id: int, body: bytes, dialect: Dialect) -> Reply:
            try:
                new = self._set_handlers[param_id](self._state, body, dialect)
            except DecodeError as exc:
                raise Refused(Status.INVALID_PARAMETERS, str(exc)) from None
            self._commit(new)
            return Reply.ok()
        return self._run(QcomMessage.SET_PARAM, payload, action)

    def _on_get(self, ctx: CallContext, payload: bytes) -> Reply:
        def action(param_id: int, body: bytes, dialect: Dialect) -> Reply:
            try:
                return Reply.ok(self._get(param_id, body))
            except DecodeError as exc:
                raise Refused(Status.INVALID_PARAMETERS, str(exc)) from None
        return self._run(QcomMessage.GET_PARAM, payload, action)

    def _on_start(self, ctx: CallContext, payload: bytes) -> Reply:
        def action(param_id: int, body: bytes, dialect: Dialect) -> Reply:
            state = self._state
            if state.running:
                return Reply.ok()  # v7/v8: SUCCESS when already running (protocol.md §2.1)
            if not any(g.events is not None for g in state.groups):
                raise Refused(Status.GENERIC_ERROR, "START_TIMER before any GRP_EV_MAP")
            self._state = dataclasses.replace(state, running=True)
            self.sampler.start(self._build_config(self._state))
            return Reply.ok()
        return self._run(QcomMessage.START_ACTIVITY, payload, action)

    def _on_stop(self, ctx: CallContext, payload: bytes) -> Reply:
        def action(param_id: int, body: bytes, dialect: Dialect) -> Reply:
            if self._state.running:
                self._state = dataclasses.replace(self._state, running=False)
                self.sampler.stop()
            return Reply.ok()  # v7/v8: SUCCESS also when not running
        return self._run(QcomMessage.STOP_ACTIVITY, payload, action)

    # -- GET --------------------------------------------------------------------------
    def _get(self, param_id: int, body: bytes) -> bytes:
        state = self._state
        if param_id == ParamId.GET_CUR_FREQ:
            req = ScalarMsg.unpack(body)
            value = self.cur_freq(req.hw_type, req.mon_idx)
            if value is None:
                raise Refused(Status.INVALID_PARAMETERS,
                              f"no monitor {req.mon_idx} in group {req.hw_type}")
            return FreqReply(value).pack()
        if param_id == ParamId.GET_ADAPTIVE_CUR_FREQ:
            hw = GetAdaptiveCurFreq.unpack(body).hw_type
            if state.group(hw) is None:
                raise Refused(Status.INVALID_PARAMETERS, f"no group {hw}")
            return FreqReply(self.sampler.adaptive_cur(hw) or 0).pack()
        # GET_TIMESTAMP: the request body is not interpreted (protocol.md §5.9)
        return Timestamp(self.clock.now_ns()).pack()

    def _fits(self, why: str | None) -> None:
        """Refuse with INVALID_PARAMETERS when the SoC hardware check gave a reason."""
        if why is not None:
            raise Refused(Status.INVALID_PARAMETERS, why)

    # -- SET handlers: each returns the new state or raises Refused/DecodeError -------
    def _set_mem_group(self, state: CpucpSnapshot, body: bytes, d: Dialect) -> CpucpSnapshot:
        node = NodeMsg.unpack(body)  # mon_type, mon_idx and name are not interpreted
        if node.hw_type not in GROUP_HW_TYPES:
            raise Refused(Status.INVALID_PARAMETERS, f"hw_type {node.hw_type} is no group")
        if self.hardware is not None:
            self._fits(self.hardware.check_group(node.hw_type))
            self._fits(self.hardware.check_cpumask(node.cpumask, "group cpumask"))
        grp = state.group(node.hw_type)
        if grp is None:
            if len(state.groups) >= self.limits.max_groups:
                raise Refused(Status.BUSY, f"all {self.limits.max_groups} group slots used")
            return dataclasses.replace(
                state, groups=(*state.groups, GroupState(node.hw_type, node.cpumask)))
        if node.cpumask and any(m.cpumask & ~node.cpumask for m in grp.monitors):
            raise Refused(Status.INVALID_PARAMETERS,
                          "new group cpumask does not cover its monitors")
        return _replace_group(state, dataclasses.replace(grp, cpumask=node.cpumask))

    def _set_monitor(self, state: CpucpSnapshot, body: bytes, d: Dialect) -> CpucpSnapshot:
        node = NodeMsg.unpack(body)
        grp = state.group(node.hw_type)
        if grp is None:
            raise Refused(Status.NOT_FOUND, f"no group {node.hw_type}")
        count = len(grp.monitors)
        if node.mon_idx >= count:
            if node.mon_idx >= self.limits.max_monitors:
                raise Refused(Status.NOT_FOUND,
                              f"monitor slots full ({self.limits.max_monitors})")
            if node.mon_idx > count:
                raise Refused(Status.INVALID_PARAMETERS,
                              f"mon_idx {node.mon_idx} skips slot {count}")
        if node.mon_type not in (0, 1):
            raise Refused(Status.INVALID_PARAMETERS, f"mon_type {node.mon_type}")
        if self.hardware is not None:
            self._fits(self.hardware.check_cpumask(node.cpumask, "monitor cpumask"))
        if grp.cpumask and node.cpumask & ~grp.cpumask:
            raise Refused(Status.INVALID_PARAMETERS,
                          f"monitor mask {node.cpumask:#x} outside group mask {grp.cpumask:#x}")
        if node.mon_idx < count:  # re-programming keeps tunables and map
            mon = dataclasses.replace(grp.monitors[node.mon_idx], cpumask=node.cpumask,
                                      mon_type=node.mon_type, name=node.name)
            return _replace_monitor(state, grp.hw_type, mon)
        mon = MonitorState(node.mon_idx, node.cpumask, node.mon_type, node.name)
        return _replace_group(state, dataclasses.replace(grp, monitors=(*grp.monitors, mon)))

    def _set_common_ev_map(self, state: CpucpSnapshot, body: bytes,
                           d: Dialect) -> CpucpSnapshot:
        num_evs, hw_type = _head_u32s(body, "ev_map_msg.num_evs", "ev_map_msg.hw_type")
        limit = min(self.limits.max_common_events, d.common_event_slots)
        if num_evs > limit:
            raise Refused(Status.INVALID_PARAMETERS, f"num_evs {num_evs} > {limit}")
        if hw_type != HwType.ALL:
            raise Refused(Status.INVALID_PARAMETERS, f"common map hw_type {hw_type:#x}")
        events = EvMapMsg.unpack(body).events
        _check_event_ids(events)
        return dataclasses.replace(state, common_events=events, common_dialect=d)

    def _set_grp_ev_map(self, state: CpucpSnapshot, body: bytes, d: Dialect) -> CpucpSnapshot:
        num_evs, hw_type = _head_u32s(body, "ev_map_msg.num_evs", "ev_map_msg.hw_type")
        grp = state.group(hw_type)
        if grp is None:
            raise Refused(Status.INVALID_PARAMETERS, f"no group {hw_type}")
        if num_evs > self.limits.max_group_events:
            raise Refused(Status.INVALID_PARAMETERS,
                          f"num_evs {num_evs} > {self.limits.max_group_events}")
        events = EvMapMsg.unpack(body).events
        _check_event_ids(events)
        return _replace_group(state, dataclasses.replace(grp, events=events))

    def _scalar_handler(self, param_id: int) -> SetHandler:
        """The SET handler of a scalar param: one monitor field, or (ADAPTIVE_LOW/HIGH)
        one group field with mon_idx ignored (protocol.md §2.4)."""
        def handler(state: CpucpSnapshot, body: bytes, d: Dialect) -> CpucpSnapshot:
            return self._set_scalar(state, param_id, body)
        return handler

    def _set_scalar(self, state: CpucpSnapshot, param_id: int, body: bytes) -> CpucpSnapshot:
        msg = ScalarMsg.unpack(body)
        if param_id in _GROUP_FIELDS:
            grp = state.group(msg.hw_type)
            if grp is None:
                raise Refused(Status.INVALID_PARAMETERS, f"no group {msg.hw_type}")
            return _replace_group(
                state, dataclasses.replace(grp, **{_GROUP_FIELDS[param_id]: msg.val}))
        mon = state.monitor(msg.hw_type, msg.mon_idx)
        if mon is None:
            raise Refused(Status.INVALID_PARAMETERS,
                          f"no monitor {msg.mon_idx} in group {msg.hw_type}")
        if self.hardware is not None and param_id in (ParamId.SET_MIN_FREQ,
                                                      ParamId.SET_MAX_FREQ):
            self._fits(self.hardware.check_freq(msg.hw_type, msg.val,
                                                ParamId.label(param_id)))
        return _replace_monitor(
            state, msg.hw_type, dataclasses.replace(mon, **{_MONITOR_FIELDS[param_id]: msg.val}))

    def _set_sample_ms(self, state: CpucpSnapshot, body: bytes, d: Dialect) -> CpucpSnapshot:
        ms = SampleMs.unpack(body).ms
        if ms <= 0:  # protocol.md §5.14 leaves 0/negative open; a period must be > 0
            raise Refused(Status.INVALID_PARAMETERS, f"sample_ms {ms}")
        return dataclasses.replace(state, sample_ms=ms)

    def _set_method(self, state: CpucpSnapshot, body: bytes, d: Dialect) -> CpucpSnapshot:
        method = FreqMethod.unpack(body).method
        if method not in (0, 1):
            raise Refused(Status.INVALID_PARAMETERS, f"method {method}")
        return dataclasses.replace(state, method=method)

    def _set_map(self, state: CpucpSnapshot, body: bytes, d: Dialect) -> CpucpSnapshot:
        hw_type, mon_idx, nr_rows = _head_u32s(
            body, "map_param_msg.hw_type", "map_param_msg.mon_idx", "map_param_msg.nr_rows")
        mon = state.monitor(hw_type, mon_idx)
        if mon is None:
            raise Refused(Status.INVALID_PARAMETERS, f"no monitor {mon_idx} in group {hw_type}")
        if nr_rows > self.limits.max_map_rows:
            raise Refused(Status.OUT_OF_RANGE, f"nr_rows {nr_rows} > {self.limits.max_map_rows}")
        rows = MapMsg.unpack(body).rows
        if self.hardware is not None:
            self._fits(self.hardware.check_map(hw_type, rows))
        if self.limits.strict_map_order:
            for i in range(1, len(rows)):
                if rows[i][0] <= rows[i - 1][0]:
                    raise Refused(Status.INVALID_PARAMETERS,
                                  f"map row {i} cpu {rows[i][0]} MHz not above "
                                  f"row {i - 1} ({rows[i - 1][0]} MHz)")
        return _replace_monitor(state, hw_type, dataclasses.replace(mon, map_rows=rows))
