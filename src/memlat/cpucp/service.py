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
from typing import Any

from memlat.clock import Clock, SimClock
from memlat.cpucp.hardware import CpucpHardware
from memlat.cpucp.sampling import CounterSource, SamplingLoop, VoteSubscriber
from memlat.cpucp.state import (
    GROUP_FIELDS,
    MONITOR_FIELDS,
    CpucpLimits,
    CpucpSnapshot,
    GroupState,
    Refused,
    SetHandler,
    check_event_ids,
    head_u32s,
    replace_group,
    replace_monitor,
)
from memlat.errors import DecodeError
from memlat.governor.spec import (
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
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import (
    GROUP_HW_TYPES,
    PROTOCOL_ID,
    PROTOCOL_VERSION,
    HwType,
    ParamId,
    QcomMessage,
    message_for,
)
from memlat.scmi.platform import CallContext, Command, ProtocolHandler, Reply
from memlat.scmi.status import Status

U32_MASK = 0xFFFF_FFFF


class CpucpService(ProtocolHandler):
    """Protocol 0x80 with the MEMLAT algorithm, as the CPUCP firmware would run it.

    dialect None accepts both algorithm strings; a Dialect accepts only its own (the
    other gets NOT_SUPPORTED like any unknown algorithm). hardware: what the firmware
    knows of its SoC (`memlat.cpucp.hardware.CpucpHardware`); with its enforce_limits
    (served platforms) CPU masks beyond the SoC's CPUs, groups it lacks and frequencies
    outside its OPP limits are refused with INVALID_PARAMETERS (docs/cpucp.md).
    """

    protocol_id = PROTOCOL_ID
    version = PROTOCOL_VERSION

    def __init__(self, *, dialect: Dialect | None = None, limits: CpucpLimits | None = None,
                 clock: Clock | None = None, counter_source: CounterSource | None = None,
                 hardware: CpucpHardware | None = None, num_agents: int = 1) -> None:
        self.dialects = frozenset(Dialect) if dialect is None else frozenset({Dialect(dialect)})
        self.limits = limits or CpucpLimits()
        self.clock: Clock = clock if clock is not None else SimClock()
        self.hardware = hardware if hardware is not None else CpucpHardware()
        self.num_agents = num_agents
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
        for pid in (*MONITOR_FIELDS, *GROUP_FIELDS):
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

    def state(self) -> CpucpSnapshot:
        """`Platform.state()` hook: the immutable programmed configuration and running
        flag, so "a refused command changes no state" covers protocol 0x80 too."""
        return self.snapshot()

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

    @property
    def _present(self) -> int:
        """Mask of the CPUs the part has (all 32 bits when the hardware does not say)."""
        n = self.hardware.ncpus
        return U32_MASK if n is None else (1 << n) - 1

    def _ncpus(self, state: CpucpSnapshot) -> int:
        if self.hardware.ncpus is not None:
            return self.hardware.ncpus
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
        ncpus = self._ncpus(state)
        present = (1 << ncpus) - 1  # absent CPUs have no counters (protocol.md §5.7)
        groups = []
        for grp in state.groups:
            events = (grp.events or ()) + (UNUSED_EVENT,) * 3
            monitors = tuple(dataclasses.replace(m, cpumask=m.cpumask & present)
                             for m in grp.monitors)
            groups.append(GroupSpec(
                hw_type=grp.hw_type, name=self.hardware.group_name(grp.hw_type),
                monitors=monitors, miss_event=events[0], wb_event=events[1],
                acc_event=events[2], adaptive_low_khz=grp.adaptive_low_khz,
                adaptive_high_khz=grp.adaptive_high_khz))
        return GovernorConfig(ncpus=ncpus, groups=tuple(groups), common=common,
                              sample_ms=state.sample_ms, method=state.method,
                              cluster_max_mhz=self.hardware.cluster_max_mhz)

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

    # -- SET handlers: each returns the new state or raises Refused/DecodeError -------
    def _fits(self, why: str | None) -> None:
        """Refuse with INVALID_PARAMETERS when a SoC-limits check gave a reason."""
        if why is not None:
            raise Refused(Status.INVALID_PARAMETERS, why)

    def _set_mem_group(self, state: CpucpSnapshot, body: bytes, d: Dialect) -> CpucpSnapshot:
        node = NodeMsg.unpack(body)  # mon_type, mon_idx and name are not interpreted
        if node.hw_type not in GROUP_HW_TYPES:
            raise Refused(Status.INVALID_PARAMETERS, f"hw_type {node.hw_type} is no group")
        if self.hardware.enforce_limits:
            self._fits(self.hardware.check_group(node.hw_type))
            self._fits(self.hardware.check_cpumask(node.cpumask, "group cpumask"))
        grp = state.group(node.hw_type)
        if grp is None:
            if len(state.groups) >= self.limits.max_groups:
                raise Refused(Status.BUSY, f"all {self.limits.max_groups} group slots used")
            return dataclasses.replace(
                state, groups=(*state.groups, GroupState(node.hw_type, node.cpumask)))
        if node.cpumask and any(m.cpumask & self._present & ~node.cpumask
                                for m in grp.monitors):
            raise Refused(Status.INVALID_PARAMETERS,
                          "new group cpumask does not cover its monitors")
        return replace_group(state, dataclasses.replace(grp, cpumask=node.cpumask))

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
        if self.hardware.enforce_limits:
            self._fits(self.hardware.check_cpumask(node.cpumask, "monitor cpumask"))
        # bits of CPUs the part lacks are ignored (static masks, protocol.md §5 point 7)
        if grp.cpumask and node.cpumask & self._present & ~grp.cpumask:
            raise Refused(Status.INVALID_PARAMETERS,
                          f"monitor mask {node.cpumask:#x} outside group mask {grp.cpumask:#x}")
        if node.mon_idx < count:  # re-programming keeps tunables and map
            mon = dataclasses.replace(grp.monitors[node.mon_idx], cpumask=node.cpumask,
                                      compute=node.mon_type == 1, name=node.name)
            return replace_monitor(state, grp.hw_type, node.mon_idx, mon)
        mon = MonitorSpec(cpumask=node.cpumask, compute=node.mon_type == 1, name=node.name)
        return replace_group(state, dataclasses.replace(grp, monitors=(*grp.monitors, mon)))

    def _set_common_ev_map(self, state: CpucpSnapshot, body: bytes,
                           d: Dialect) -> CpucpSnapshot:
        num_evs, hw_type = head_u32s(body, "ev_map_msg.num_evs", "ev_map_msg.hw_type")
        limit = min(self.limits.max_common_events, d.common_event_slots)
        if num_evs > limit:
            raise Refused(Status.INVALID_PARAMETERS, f"num_evs {num_evs} > {limit}")
        if hw_type != HwType.ALL:
            raise Refused(Status.INVALID_PARAMETERS, f"common map hw_type {hw_type:#x}")
        events = EvMapMsg.unpack(body).events
        check_event_ids(events)
        return dataclasses.replace(state, common_events=events, common_dialect=d)

    def _set_grp_ev_map(self, state: CpucpSnapshot, body: bytes, d: Dialect) -> CpucpSnapshot:
        num_evs, hw_type = head_u32s(body, "ev_map_msg.num_evs", "ev_map_msg.hw_type")
        grp = state.group(hw_type)
        if grp is None:
            raise Refused(Status.INVALID_PARAMETERS, f"no group {hw_type}")
        if num_evs > self.limits.max_group_events:
            raise Refused(Status.INVALID_PARAMETERS,
                          f"num_evs {num_evs} > {self.limits.max_group_events}")
        events = EvMapMsg.unpack(body).events
        check_event_ids(events)
        return replace_group(state, dataclasses.replace(grp, events=events))

    def _scalar_handler(self, param_id: int) -> SetHandler:
        """The SET handler of a scalar param: one monitor field, or (ADAPTIVE_LOW/HIGH)
        one group field with mon_idx ignored (protocol.md §2.4)."""
        def handler(state: CpucpSnapshot, body: bytes, d: Dialect) -> CpucpSnapshot:
            return self._set_scalar(state, param_id, body)
        return handler

    def _set_scalar(self, state: CpucpSnapshot, param_id: int, body: bytes) -> CpucpSnapshot:
        msg = ScalarMsg.unpack(body)
        if param_id in GROUP_FIELDS:
            grp = state.group(msg.hw_type)
            if grp is None:
                raise Refused(Status.INVALID_PARAMETERS, f"no group {msg.hw_type}")
            changes: dict[str, Any] = {GROUP_FIELDS[param_id]: msg.val}
            return replace_group(state, dataclasses.replace(grp, **changes))
        mon = state.monitor(msg.hw_type, msg.mon_idx)
        if mon is None:
            raise Refused(Status.INVALID_PARAMETERS,
                          f"no monitor {msg.mon_idx} in group {msg.hw_type}")
        if self.hardware.enforce_limits and param_id in (ParamId.SET_MIN_FREQ,
                                                        ParamId.SET_MAX_FREQ):
            self._fits(self.hardware.check_freq(msg.hw_type, msg.val,
                                                  ParamId.label(param_id)))
        fields: dict[str, Any] = {MONITOR_FIELDS[param_id]: msg.val}
        return replace_monitor(state, msg.hw_type, msg.mon_idx, dataclasses.replace(mon, **fields))

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
        hw_type, mon_idx, nr_rows = head_u32s(
            body, "map_param_msg.hw_type", "map_param_msg.mon_idx", "map_param_msg.nr_rows")
        mon = state.monitor(hw_type, mon_idx)
        if mon is None:
            raise Refused(Status.INVALID_PARAMETERS, f"no monitor {mon_idx} in group {hw_type}")
        if nr_rows > self.limits.max_map_rows:
            raise Refused(Status.OUT_OF_RANGE, f"nr_rows {nr_rows} > {self.limits.max_map_rows}")
        rows = MapMsg.unpack(body).rows
        if self.hardware.enforce_limits:
            self._fits(self.hardware.check_map(hw_type, rows))
        if self.limits.strict_map_order:
            for i in range(1, len(rows)):
                if rows[i][0] <= rows[i - 1][0]:
                    raise Refused(Status.INVALID_PARAMETERS,
                                  f"map row {i} cpu {rows[i][0]} MHz not above "
                                  f"row {i - 1} ({rows[i - 1][0]} MHz)")
        return replace_monitor(state, hw_type, mon_idx, dataclasses.replace(mon, map_rows=rows))
