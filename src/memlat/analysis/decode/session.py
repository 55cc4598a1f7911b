"""Pair parsed trace records into SCMI exchanges and decode each (no I/O).

Linux logs a command (CMND) when it is sent and its reply (RESP) when it arrives, both
with the header's sequence number (the 10-bit token, protocol.md §1.1); an asynchronous
command's delayed response (DLYD) comes later with the same sequence number, and a
notification (NOTI) stands alone (drivers/firmware/arm_scmi/driver.c). Pairing key:
(SCMI instance, protocol, message id, seq); a CMND whose key is still open closes the
older exchange as unanswered. `scmi_xfer_begin/_end` lines with the same protocol,
message and seq attach their transfer id and the errno the transfer returned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from memlat.analysis.decode.ftrace import (
    DevfreqFreq,
    Malformed,
    MsgDump,
    OtherEvent,
    Record,
    Xfer,
)
from memlat.analysis.decode.messages import (
    Decoded,
    decode_command,
    decode_delayed,
    decode_notification,
    decode_response,
    message_name,
    protocol_name,
)
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import PROTOCOL_ID as QCOM_PROTOCOL_ID
from memlat.scmi.status import Status

Key = tuple[int, int, int, int]


def status_name(status: int | None) -> str | None:
    """SUCCESS, INVALID_PARAMETERS... or `unknown(-42)`."""
    if status is None:
        return None
    try:
        return Status(status).name
    except ValueError:
        return f"unknown({status})"


@dataclass
class Message:
    """One SCMI exchange as the trace shows it.

    line: the line of the CMND (NOTI, or the first RESP) dump; lines: every line used.
    kind: "command" (with its response and delayed response when traced),
    "notification", or "response" (a reply whose command is not in the trace).
    Times in ns of the trace clock (None without timestamps); latency_us: RESP - CMND,
    else scmi_xfer_end - scmi_xfer_begin; delayed_latency_us: DLYD - CMND.
    """

    index: int
    kind: str
    line: int
    instance: int | None
    channel: int | None
    protocol_id: int
    message_id: int
    seq: int
    lines: list[int] = field(default_factory=list)
    t_ns: int | None = None
    request: Decoded | None = None
    status: int | None = None
    response: Decoded | None = None
    t_response_ns: int | None = None
    delayed_status: int | None = None
    delayed: Decoded | None = None
    t_delayed_ns: int | None = None
    dialect: Dialect | None = None
    param_id: int | None = None
    transfer_id: int | None = None
    xfer_errno: int | None = None
    t_xfer_begin_ns: int | None = None
    t_xfer_end_ns: int | None = None
    raw: bool = False
    notes: list[str] = field(default_factory=list)
    request_payload: bytes = b""
    response_payload: bytes = b""

    @property
    def protocol(self) -> str:
        """Protocol name: base, qcom, perf, clock..."""
        return protocol_name(self.protocol_id)

    @property
    def name(self) -> str:
        """The message name (a notification's or delayed response's own name)."""
        return message_name(self.protocol_id, self.message_id,
                            "notification" if self.kind == "notification" else "command")

    @property
    def param(self) -> str | None:
        """QCOM param name, when this is a QCOM SET/GET/START/STOP."""
        return None if self.request is None else self.request.fields.get("param")

    @property
    def answered(self) -> bool:
        """A response was traced."""
        return self.status is not None

    @property
    def ok(self) -> bool:
        """Answered with SUCCESS (a notification is always ok)."""
        return self.kind == "notification" or self.status == Status.SUCCESS

    @property
    def latency_us(self) -> float | None:
        """Response time in microseconds, when both ends have timestamps."""
        if self.t_ns is not None and self.t_response_ns is not None:
            return (self.t_response_ns - self.t_ns) / 1000
        if self.t_xfer_begin_ns is not None and self.t_xfer_end_ns is not None:
            return (self.t_xfer_end_ns - self.t_xfer_begin_ns) / 1000
        return None

    @property
    def delayed_latency_us(self) -> float | None:
        """Command to delayed response, microseconds."""
        if self.t_ns is not None and self.t_delayed_ns is not None:
            return (self.t_delayed_ns - self.t_ns) / 1000
        return None

    def as_json(self) -> dict[str, Any]:
        """The `memlat decode --json` object (docs/decode.md lists the keys)."""
        out: dict[str, Any] = {
            "index": self.index, "kind": self.kind, "line": self.line,
            "t_s": None if self.t_ns is None else self.t_ns / 1e9,
            "instance": self.instance, "channel": self.channel,
            "protocol_id": self.protocol_id, "protocol": self.protocol,
            "message_id": self.message_id, "message": self.name, "seq": self.seq,
        }
        if self.dialect is not None:
            out["dialect"] = self.dialect.value
        if self.param_id is not None:
            out["param"] = self.param
        if self.request is not None:
            out["request" if self.kind != "notification" else "payload"] = self.request.as_json()
        if self.kind != "notification":
            out["status"] = self.status
            out["status_name"] = status_name(self.status)
            out["response"] = None if self.response is None else self.response.as_json()
            out["latency_us"] = self.latency_us
        if self.t_delayed_ns is not None or self.delayed is not None:
            out["delayed"] = {"status": self.delayed_status,
                              "status_name": status_name(self.delayed_status),
                              "message": message_name(self.protocol_id, self.message_id,
                                                      "delayed"),
                              **(self.delayed.as_json() if self.delayed else {}),
                              "latency_us": self.delayed_latency_us}
        if self.transfer_id is not None:
            out["transfer_id"] = self.transfer_id
        if self.xfer_errno is not None:
            out["xfer_errno"] = self.xfer_errno
        if self.raw:
            out["raw"] = True
        out["lines"] = self.lines
        if self.notes:
            out["notes"] = self.notes
        return out


@dataclass
class DecodeResult:
    """Everything decoded from one trace: messages in trace order, devfreq events, notes."""

    messages: list[Message] = field(default_factory=list)
    devfreq: list[DevfreqFreq] = field(default_factory=list)
    malformed: list[Malformed] = field(default_factory=list)
    other_events: dict[str, int] = field(default_factory=dict)
    xfers: int = 0

    def commands(self, protocol_id: int | None = None) -> list[Message]:
        """The command exchanges (optionally of one protocol), in trace order."""
        return [m for m in self.messages if m.kind == "command"
                and (protocol_id is None or m.protocol_id == protocol_id)]

    def qcom(self) -> list[Message]:
        """QCOM SET/GET/START/STOP commands."""
        return [m for m in self.commands(QCOM_PROTOCOL_ID) if m.param_id is not None]

    @property
    def dialect(self) -> Dialect | None:
        """The dialect of the first QCOM command with a known algorithm string."""
        for m in self.qcom():
            if m.dialect is not None:
                return m.dialect
        return None


class Pairer:
    """Builds `Message`s from records, in order (feed as many batches as needed)."""

    def __init__(self) -> None:
        self.result = DecodeResult()
        self._open: dict[Key, Message] = {}
        self._async: dict[Key, Message] = {}
        self._by_xfer: dict[tuple[int, int, int], Message] = {}
        self._pending_begin: dict[tuple[int, int, int], Xfer] = {}

    def feed(self, records: Iterable[Record]) -> None:
        """Consume records (from memlat.analysis.decode.ftrace)."""
        for rec in records:
            if isinstance(rec, MsgDump):
                self._dump(rec)
            elif isinstance(rec, Xfer):
                self._xfer(rec)
            elif isinstance(rec, DevfreqFreq):
                self.result.devfreq.append(rec)
            elif isinstance(rec, Malformed):
                self.result.malformed.append(rec)
            elif isinstance(rec, OtherEvent):
                others = self.result.other_events
                others[rec.event] = others.get(rec.event, 0) + 1

    def finish(self) -> DecodeResult:
        """Flag commands never answered; return the result."""
        for msg in self._open.values():
            msg.notes.append("no response in the trace")
        self._open.clear()
        return self.result

    def _new(self, rec: MsgDump, kind: str) -> Message:
        msg = Message(len(self.result.messages) + 1, kind, rec.where.lineno, rec.instance,
                      rec.channel, rec.protocol_id, rec.message_id, rec.seq,
                      [rec.where.lineno], rec.where.ts_ns, raw=rec.raw)
        self.result.messages.append(msg)
        return msg

    def _dump(self, rec: MsgDump) -> None:
        key: Key = (rec.instance or 0, rec.protocol_id, rec.message_id, rec.seq)
        kind = rec.kind
        if kind == "command":
            old = self._open.pop(key, None)
            if old is not None:
                old.notes.append("no response before the sequence number was reused")
            self._async.pop(key, None)
            msg = self._new(rec, "command")
            msg.request, msg.dialect, msg.param_id = decode_command(
                rec.protocol_id, rec.message_id, rec.payload)
            msg.request_payload = rec.payload
            self._open[key] = msg
            xkey = (rec.protocol_id, rec.message_id, rec.seq)
            begin = self._pending_begin.pop(xkey, None)
            if begin is not None:
                msg.transfer_id, msg.t_xfer_begin_ns = begin.transfer_id, begin.where.ts_ns
                msg.lines.insert(0, begin.where.lineno)
            self._by_xfer[xkey] = msg
        elif kind == "response":
            msg_or_none = self._open.pop(key, None)
            if msg_or_none is None:
                msg = self._new(rec, "response")
                msg.notes.append("response without its command in the trace")
            else:
                msg = msg_or_none
                msg.lines.append(rec.where.lineno)
            msg.status, msg.t_response_ns = rec.status, rec.where.ts_ns
            msg.response_payload = rec.payload
            if rec.status == Status.SUCCESS:
                msg.response = decode_response(rec.protocol_id, rec.message_id, rec.payload,
                                               param_id=msg.param_id, request=msg.request)
                self._async[key] = msg
            elif rec.payload:
                msg.response = Decoded({"hex": rec.payload.hex()}, {}, rec.payload.hex())
        elif kind == "delayed":
            msg_or_none = self._async.pop(key, None) or self._open.pop(key, None)
            if msg_or_none is None:
                msg = self._new(rec, "response")
                msg.notes.append("delayed response without its command in the trace")
            else:
                msg = msg_or_none
                msg.lines.append(rec.where.lineno)
            msg.delayed_status, msg.t_delayed_ns = rec.status, rec.where.ts_ns
            msg.delayed = decode_delayed(rec.protocol_id, rec.message_id, rec.payload)
        elif kind == "notification":
            msg = self._new(rec, "notification")
            msg.request = decode_notification(rec.protocol_id, rec.message_id, rec.payload)
            msg.request_payload = rec.payload
        else:
            msg = self._new(rec, "command")
            msg.notes.append(f"unknown scmi_msg_dump tag {rec.tag!r}")

    def _xfer(self, rec: Xfer) -> None:
        self.result.xfers += 1
        xkey = (rec.protocol_id, rec.message_id, rec.seq)
        if rec.kind == "begin":
            # Linux traces xfer_begin before the CMND dump; keep it for the next command
            self._pending_begin[xkey] = rec
            return
        msg = self._by_xfer.get(xkey)
        if msg is None:
            return
        if msg.transfer_id is None:
            msg.transfer_id = rec.transfer_id
        if rec.kind == "end":
            msg.xfer_errno, msg.t_xfer_end_ns = rec.status, rec.where.ts_ns
            msg.lines.append(rec.where.lineno)


def decode_records(records: Iterable[Record]) -> DecodeResult:
    """Pair and decode every record; see the module docstring."""
    pairer = Pairer()
    pairer.feed(records)
    return pairer.finish()
