"""The agent's probe: program the emulated (or a real) CPUCP memlat over SCMI.

Order of traffic (protocol.md §3.5, §4.4): base-protocol discovery as Linux does it,
PROTOCOL_VERSION of 0x80, then the QCOM sequence built from a `SocConfig`:

    SET COMMON_EV_MAP
    per group: SET SET_MEM_GROUP, SET SET_GRP_EV_MAP, [ADAPTIVE_LOW/HIGH_FREQ if set]
      per monitor: SET SET_MONITOR, IPM_CEIL, [BE_STALL_FLOOR v8], [optional knobs],
                   MON_FREQ_MAP, SET_MIN_FREQ, SET_MAX_FREQ
    SET SAMPLE_MS, [SET SET_EFFECTIVE_FREQ_METHOD v8], START START_TIMER

Every struct is zero-filled where the configuration sets nothing (decisions.md §1: our
agent never leaks stack garbage). rx_size follows the dialect: v8 asks 0 for SET/START/
STOP and the exact result size for GET; rfc2024 asks 128 for every command (§4.1).

Error policy (protocol.md §3.6 and §4.4): v8 aborts at the first non-SUCCESS reply or
transport error. The protocol has no delete commands, so "undo" can only mean stopping
the sampling loop: when START_TIMER was sent (whatever it answered) the probe sends
STOP_TIMER; what was already programmed stays in the firmware's tables and the result
reports that state. rfc2024 keeps the RFC's behaviour by default: log every failure and
carry on (`on_error="continue"`); either policy can be chosen explicitly.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from memlat.config.model import ALL_GROUPS, SocConfig
from memlat.errors import DecodeError, MemlatError, TransportError
from memlat.qcom.codec import EvMapMsg, FreqMethod, MapMsg, NodeMsg, SampleMs, ScalarMsg
from memlat.qcom.dialect import Dialect, ErrorPolicy
from memlat.qcom.ids import PROTOCOL_ID, PROTOCOL_VERSION, ParamId, QcomMessage
from memlat.qcom.request import request
from memlat.scmi.agent import Agent, Exchange
from memlat.scmi.protocols.base import QCOM_VENDOR
from memlat.scmi.protocols.base_agent import discover as base_discover
from memlat.scmi.status import ScmiStatusError, Status

PROTOCOL_VERSION_MSG = 0x0


class ProbeError(MemlatError):
    """The probe failed; `result` holds the exchanges and the failure."""

    def __init__(self, message: str, result: ProbeResult):
        self.result = result
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ProbeMessage:
    """One QCOM command of the probe sequence.

    index: 1-based position in the sequence (protocol.md §3.5 / §4.4 numbering).
    payload: the whole SCMI payload (16-byte QCOM header + param struct).
    """

    index: int
    message_id: int
    param_id: int
    payload: bytes
    rx_size: int | None
    group: str | None = None
    monitor: str | None = None

    @property
    def param(self) -> str:
        """The param name, e.g. MON_FREQ_MAP."""
        return ParamId.label(self.param_id)

    @property
    def where(self) -> str:
        """`group/monitor`, `group`, or "" for global messages."""
        if self.group and self.monitor:
            return f"{self.group}/{self.monitor}"
        return self.group or ""

    def describe(self) -> str:
        """`message 7 (MON_FREQ_MAP, ddr/mon_0)`."""
        where = f", {self.where}" if self.where else ""
        return f"message {self.index} ({self.param}{where})"


@dataclass(frozen=True, slots=True)
class ProbeFailure:
    """Why a message failed: its status, or a transport error text."""

    message: ProbeMessage
    status: int | None
    error: str | None = None

    def describe(self) -> str:
        """`message 7 (MON_FREQ_MAP, ddr/mon_0) failed: INVALID_PARAMETERS (-2)`."""
        why = self.error if self.error is not None else Status.describe(int(self.status or 0))
        return f"{self.message.describe()} failed: {why}"


@dataclass
class ProbeResult:
    """Everything a probe did: the plan, every exchange, failures and the end state.

    state: "running" (sequence complete, loop started), "stopped" (failure after
    START_TIMER was sent, then STOP_TIMER succeeded), "not-started" (failure before
    START_TIMER; what was programmed stays, the loop never ran), "unknown" (STOP_TIMER
    failed too), "unprogrammed" (failed before any QCOM command).
    """

    dialect: Dialect
    messages: list[ProbeMessage]
    exchanges: list[Exchange] = field(default_factory=list)
    sequence: list[Exchange] = field(default_factory=list)  # QCOM SET/GET/START/STOP only
    failures: list[ProbeFailure] = field(default_factory=list)
    version: int | None = None
    state: str = "unprogrammed"
    stop_exchange: Exchange | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every message succeeded and the loop runs."""
        return not self.failures and self.state == "running"

    @property
    def failure(self) -> ProbeFailure | None:
        """The first failure, if any."""
        return self.failures[0] if self.failures else None

    def summary(self) -> str:
        """One line for humans."""
        sent = len(self.sequence)
        if self.ok:
            return f"probe ok: {sent}/{len(self.messages)} commands, firmware running"
        first = self.failure.describe() if self.failure else "; ".join(self.notes)
        tail = f" ({MAY_BE_RUNNING})" if self.state == "unknown" else ""
        return (f"probe {'incomplete' if self.failures else 'failed'}: {first}; "
                f"{sent}/{len(self.messages)} commands sent, "
                f"{len(self.failures)} failed; firmware {self.state}{tail}")


# ---- building the sequence ------------------------------------------------------------

def build_sequence(soc: SocConfig, dialect: Dialect | str = Dialect.V8) -> list[ProbeMessage]:
    """The QCOM commands the probe sends for `soc`, in order (protocol.md §3.5 / §4.4)."""
    d = Dialect(dialect)
    cfg = soc.with_dialect(d.value)
    out: list[ProbeMessage] = []

    def add(param: ParamId, body: bytes, group: str | None = None,
            monitor: str | None = None) -> None:
        req = request(d, param, body)
        out.append(ProbeMessage(len(out) + 1, req.message_id, req.param_id, req.payload,
                                req.rx_size, group, monitor))

    slots = cfg.common_events.slots(d.value)
    add(ParamId.SET_COMMON_EV_MAP, EvMapMsg(len(slots), ALL_GROUPS, tuple(slots)).pack(d))
    for g in cfg.groups:
        add(ParamId.SET_MEM_GROUP,
            NodeMsg(cfg.mem_group_cpumask(g, d.value), g.hw_type).pack(), g.name)
        ev = g.events.slots()
        add(ParamId.SET_GRP_EV_MAP, EvMapMsg(len(ev), g.hw_type, tuple(ev)).pack(d), g.name)
        for param, value in ((ParamId.ADAPTIVE_LOW_FREQ, g.adaptive_low_khz),
                             (ParamId.ADAPTIVE_HIGH_FREQ, g.adaptive_high_khz)):
            if value is not None:
                add(param, ScalarMsg(g.hw_type, 0, value).pack(), g.name)
        for idx, mon in enumerate(g.monitors):
            name = mon.wire_name(idx, d.value)
            node = NodeMsg(mon.cpumask, g.hw_type, mon.mon_type, idx, name)
            add(ParamId.SET_MONITOR, node.pack(), g.name, name)
            for pname, value in mon.scalar_params(d.value):
                add(ParamId[pname], ScalarMsg(g.hw_type, idx, value).pack(), g.name, name)
            rows = tuple((int(v1), int(v2)) for v1, v2 in mon.map)
            add(ParamId.MON_FREQ_MAP, MapMsg(g.hw_type, idx, rows).pack(d), g.name, name)
            for param, value in ((ParamId.SET_MIN_FREQ, g.min_value),
                                 (ParamId.SET_MAX_FREQ, g.max_value)):
                add(param, ScalarMsg(g.hw_type, idx, value).pack(), g.name, name)
    add(ParamId.SAMPLE_MS, SampleMs(cfg.sample_ms).pack())
    if d.rules.sends_freq_method:
        add(ParamId.SET_EFFECTIVE_FREQ_METHOD, FreqMethod(cfg.freq_method).pack())
    add(ParamId.START_TIMER, b"")
    return out


def stop_message(dialect: Dialect | str, index: int = 0) -> ProbeMessage:
    """STOP_ACTIVITY(STOP_TIMER): the only "undo" the protocol offers (protocol.md §3.6)."""
    req = request(dialect, ParamId.STOP_TIMER)
    return ProbeMessage(index, req.message_id, req.param_id, req.payload, req.rx_size)


# ---- running it -----------------------------------------------------------------------

def default_policy(dialect: Dialect | str) -> ErrorPolicy:
    """abort for v8 (protocol.md §3.6), continue for rfc2024 (protocol.md §4.4)."""
    return Dialect(dialect).rules.error_policy


def probe(agent: Agent, soc: SocConfig, dialect: Dialect | str = Dialect.V8, *,
          on_error: ErrorPolicy | None = None, discover: bool = True,
          reconnect: Callable[[], Agent] | None = None) -> ProbeResult:
    """Discover, check 0x80's version, send the sequence; never raises on a refusal.

    `reconnect` opens a fresh agent on the same platform: when the connection is lost
    after START_TIMER was sent, the probe uses it once to deliver STOP_TIMER; without it
    (or if that fails too) the result says the platform may still be running.
    Returns a ProbeResult; `check(result)` raises ProbeError when it did not succeed.
    """
    d = Dialect(dialect)
    policy = on_error or default_policy(d)
    result = ProbeResult(d, build_sequence(soc, d))
    first_log = len(agent.log)
    try:
        if not _prelude(agent, d, result, discover):
            return result
        started = False
        for msg in result.messages:
            exchange = _send(agent, msg, result)
            if msg.param_id == ParamId.START_TIMER:
                started = True
            if exchange.status == Status.SUCCESS:
                continue
            result.failures.append(ProbeFailure(msg, exchange.status, exchange.error))
            if policy == "abort":
                break
        if result.failures and policy == "abort":
            result.state = _undo(agent, d, result, started, reconnect)
        else:
            result.state = "running" if _started_ok(result) else "not-started"
            if result.state == "not-started" and _start_lost(result):
                result.state = "unknown"
                result.notes.append(MAY_BE_RUNNING)
    finally:
        result.exchanges = agent.log[first_log:]
    return result


def check(result: ProbeResult) -> ProbeResult:
    """Raise ProbeError naming the failed message unless the probe succeeded."""
    if not result.ok:
        raise ProbeError(result.summary(), result)
    return result


def _prelude(agent: Agent, d: Dialect, result: ProbeResult, discover: bool) -> bool:
    """Base discovery and PROTOCOL_VERSION(0x80); False (with a note) when fatal."""
    if discover:
        try:
            info = base_discover(agent)
        except TransportError as exc:
            result.notes.append(f"base discovery failed: transport error: {exc}")
            return False
        except (ScmiStatusError, DecodeError) as exc:
            result.notes.append(f"base discovery failed: {exc}")
            return False
        protocols = info.protocols
        if PROTOCOL_ID not in protocols:
            if info.transport_errors:  # the list is empty because the transport failed
                result.notes.append(f"base discovery failed: transport error: "
                                    f"{info.transport_errors[0]}")
            else:
                result.notes.append(f"platform does not advertise protocol {PROTOCOL_ID:#x} "
                                    f"(protocols {[hex(p) for p in protocols]})")
            return False
        if not info.instantiable(PROTOCOL_ID, QCOM_VENDOR):
            # Linux binds a vendor protocol by the vendor name DISCOVER_VENDOR gave
            # (driver.c scmi_vendor_protocol_lookup: case-insensitive key on vendor_id)
            result.notes.append(
                f"platform vendor {info.vendor!r} is not {QCOM_VENDOR!r}: Linux would not "
                f"bind vendor protocol {PROTOCOL_ID:#x} (vendor protocols bind by vendor "
                "name, case-insensitive); not probing")
            return False
    try:
        reply = agent.xfer(PROTOCOL_ID, PROTOCOL_VERSION_MSG, rx_size=4)
    except TransportError as exc:
        result.notes.append(f"PROTOCOL_VERSION({PROTOCOL_ID:#x}) failed: {exc}")
        return False
    if reply.status != Status.SUCCESS:
        result.notes.append(f"PROTOCOL_VERSION({PROTOCOL_ID:#x}) failed: "
                            f"{Status.describe(reply.status)}")
        return not d.rules.version_mismatch_fatal  # the RFC only logs it (protocol.md §4.1)
    if len(reply.values) < 4:
        result.notes.append(
            f"PROTOCOL_VERSION({PROTOCOL_ID:#x}): protocol error: SUCCESS reply without its "
            f"u32 version field ({len(reply.values)} value bytes after the status, need 4)")
        return not d.rules.version_mismatch_fatal
    (result.version,) = struct.unpack_from("<I", reply.values)
    if result.version != PROTOCOL_VERSION:
        note = (f"protocol {PROTOCOL_ID:#x} version {result.version:#x}, expected "
                f"{PROTOCOL_VERSION:#x}")
        result.notes.append(note)
        return not d.rules.version_mismatch_fatal
    return True


def _send(agent: Agent, msg: ProbeMessage, result: ProbeResult) -> Exchange:
    before = len(agent.log)
    try:
        agent.xfer(PROTOCOL_ID, msg.message_id, msg.payload, rx_size=msg.rx_size)
    except TransportError as exc:
        if len(agent.log) == before:  # refused before sending (size): nothing logged
            exchange = Exchange(PROTOCOL_ID, msg.message_id, -1, msg.payload, error=str(exc))
            result.sequence.append(exchange)
            return exchange
    exchange = agent.log[-1]
    result.sequence.append(exchange)
    return exchange


def _started_ok(result: ProbeResult) -> bool:
    last = result.sequence[-1] if result.sequence else None
    return (len(result.sequence) == len(result.messages) and last is not None
            and last.status == Status.SUCCESS)


MAY_BE_RUNNING = ("the platform may still be running its sampling loop: START_TIMER was "
                  "sent but its outcome and STOP_TIMER could not be confirmed")


def _start_lost(result: ProbeResult) -> bool:
    """START_TIMER went out and its reply was lost to a transport error."""
    return any(ex.message_id == QcomMessage.START_ACTIVITY and ex.error is not None
               and ex.token >= 0 for ex in result.sequence)


def _undo(agent: Agent, d: Dialect, result: ProbeResult, started: bool,
          reconnect: Callable[[], Agent] | None = None) -> str:
    """After an abort: STOP_TIMER if START_TIMER was sent; returns the end state.

    A STOP_TIMER lost to a transport error is retried once on a new connection from
    `reconnect`; if it still does not succeed the state is "unknown" with a plain note.
    """
    if not started:
        return "not-started" if result.sequence else "unprogrammed"
    stop = stop_message(d, len(result.messages) + 1)
    exchange = _send(agent, stop, result)
    if exchange.error is not None and reconnect is not None:
        try:
            fresh = reconnect()
        except (TransportError, OSError) as exc:
            result.notes.append(f"reconnect to send STOP_TIMER failed: {exc}")
        else:
            try:
                exchange = _send(fresh, stop, result)
                result.notes.append("connection lost after START_TIMER; STOP_TIMER sent on "
                                    "a new connection")
            finally:
                fresh.close()
    result.stop_exchange = exchange
    if exchange.status == Status.SUCCESS:
        return "stopped"
    result.notes.append(MAY_BE_RUNNING)
    return "unknown"


def iter_qcom(exchanges: list[Exchange]) -> Iterator[Exchange]:
    """The QCOM SET/GET/START/STOP exchanges among `exchanges` (for --json)."""
    qcom_ids = {int(m) for m in QcomMessage}
    for ex in exchanges:
        if ex.protocol_id == PROTOCOL_ID and ex.message_id in qcom_ids:
            yield ex
