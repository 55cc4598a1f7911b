"""The agent (OS) side core: tokens, request/response matching, timeouts, size limits.

Follows Linux drivers/firmware/arm_scmi/driver.c: tokens are allocated monotonically
modulo 1024 skipping those in flight (protocol.md §1.1); a reply is matched by token;
a command gets `timeout_s` (30 ms by default, protocol.md §1.5) and a reply that comes
later is recorded in `errors`, as Linux raw mode files it under `raw/errors`
(protocol.md §1.8). Payloads above `max_msg_size` (104 bytes by default) are refused
before anything is sent, like xfer_get_init's -ERANGE.
"""

from __future__ import annotations

import functools
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from memlat.errors import DecodeError, ScmiTimeout, TransportError
from memlat.scmi.header import TOKEN_MAX, Header
from memlat.scmi.message import Message
from memlat.scmi.smt import MAX_PAYLOAD_LINUX
from memlat.scmi.status import ScmiStatusError
from memlat.scmi.transport import Transport

DEFAULT_TIMEOUT_S = 0.030


class MessageSizeError(TransportError):
    """A payload or requested reply larger than the channel's max_msg_size (-ERANGE)."""


class Exchange(NamedTuple):
    """One command and its outcome, for logs and `memlat probe --json` (immutable; a
    named tuple because the agent records one per round trip)."""

    protocol_id: int
    message_id: int
    token: int
    payload: bytes
    status: int | None = None
    reply: bytes = b""
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        """The decisions.md §5 JSON line: protocol, message_id, token, status, payload, reply."""
        out: dict[str, object] = {
            "protocol": self.protocol_id,
            "message_id": self.message_id,
            "token": self.token,
            "status": self.status,
            "payload": self.payload.hex(),
            "reply": self.reply.hex(),
        }
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(frozen=True, slots=True)
class StrayReply:
    """A reply nobody was waiting for: late (its command timed out) or unexpected."""

    header: Header
    data: bytes
    late: bool


@dataclass
class Agent:
    """Synchronous SCMI agent over any `Transport`."""

    transport: Transport
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_msg_size: int = MAX_PAYLOAD_LINUX
    log: list[Exchange] = field(default_factory=list)
    errors: list[StrayReply] = field(default_factory=list)
    observers: list[Callable[[Exchange], None]] = field(default_factory=list)
    _last_token: int = -1
    _in_flight: set[int] = field(default_factory=set)
    _timed_out: set[int] = field(default_factory=set)

    # -- tokens -----------------------------------------------------------------------
    def _allocate_token(self) -> int:
        start = (self._last_token + 1) % TOKEN_MAX
        for step in range(TOKEN_MAX):
            token = (start + step) % TOKEN_MAX
            if token not in self._in_flight:
                self._in_flight.add(token)
                self._timed_out.discard(token)  # reused: a stray reply is no longer "late
                self._last_token = token
                return token
        raise TransportError(f"all {TOKEN_MAX} tokens are in flight")

    @property
    def in_flight(self) -> frozenset[int]:
        """Tokens sent and not yet answered."""
        return frozenset(self._in_flight)

    # -- transfer ---------------------------------------------------------------------
    def send(self, protocol_id: int, message_id: int, payload: bytes = b"") -> Header:
        """Send one command; returns its header (with the allocated token)."""
        return Header.unpack(self._send(int(protocol_id), int(message_id), payload))

    def _send(self, protocol_id: int, message_id: int, payload: bytes) -> int:
        """Send one command; returns its u32 header."""
        self._refuse(protocol_id, message_id, payload, None)
        token = self._allocate_token()
        value = message_id | protocol_id << 10 | token << 18
        try:
            self.transport.send(_U32.pack(value) + payload)
        except BaseException:
            self._in_flight.discard(token)
            raise
        return value

    def wait(self, header: Header, rx_size: int | None = None) -> Message:
        """Wait for the reply to `header`; other replies that arrive are filed in `errors`."""
        return Message(header, self._wait(header.pack(), rx_size))

    def _wait(self, value: int, rx_size: int | None) -> bytes:
        """The reply payload (status word and values) to the command with header `value`."""
        deadline = time.monotonic() + self.timeout_s
        try:
            data = self.transport.receive(self.timeout_s)  # the usual case: our reply
            if data is not None and len(data) >= 8 and data[:4] == _U32.pack(value):
                payload = bytes(data[4:])
            else:
                payload = self._wait_slow(value, data, deadline)
        finally:
            self._in_flight.discard(value >> 18)
        return payload if rx_size is None else payload[: 4 + rx_size]  # fetch_response

    def _wait_slow(self, value: int, data: bytes | None, deadline: float) -> bytes:
        """Keep waiting (until `deadline`, time.monotonic) after a first receive() that
        did not bring our reply."""
        header = Header.unpack(value)
        while True:
            if data is not None:
                reply = self._match(header, data)
                if reply is not None:
                    return reply.payload
            remaining = deadline - time.monotonic()
            # look at the channel once more even past the deadline: a reply that is
            # already there is not late because this process was descheduled
            data = self.transport.receive(max(remaining, 0.0))
            if data is None and remaining <= 0:
                self._timed_out.add(header.token)
                raise ScmiTimeout(
                    f"no reply to protocol {header.protocol_id:#x} message "
                    f"{header.message_id:#x} token {header.token} within "
                    f"{self.timeout_s * 1000:.0f} ms"
                )

    def _match(self, header: Header, data: bytes) -> Message | None:
        if len(data) >= 8 and data[:4] == _U32.pack(header.pack()):  # the expected reply
            return Message(header, bytes(data[4:]))
        try:
            reply = Message.from_bytes(data)
        except DecodeError as exc:
            raise TransportError(f"undecodable reply: {exc}") from exc
        got = reply.header
        if (got.token, got.protocol_id, got.message_id) == (
            header.token, header.protocol_id, header.message_id
        ):
            if len(reply.payload) < 4:
                raise TransportError(
                    f"reply to token {header.token} has {len(reply.payload)} payload bytes, "
                    "no status word"
                )
            return reply
        late = got.token in self._timed_out
        self._timed_out.discard(got.token)
        self.errors.append(StrayReply(got, bytes(data), late))
        return None

    def _roundtrip(self, protocol_id: int, message_id: int, payload: bytes,
                   rx_size: int | None) -> tuple[int, bytes, int]:
        """Send, wait, log: (u32 header, reply payload, status). Errors are logged and
        raised.

        `send` and `wait` folded into one frame for the synchronous agent's hot path:
        each Python call costs on every round trip (docs/transports.md "Benchmarks").
        The usual reply, the first message received carrying our header, takes no
        other call; anything else goes through `_wait_slow`. A transport error while
        waiting is logged as this exchange's error; one while sending is only raised."""
        if type(payload) is not bytes:
            payload = bytes(payload)
        if (rx_size is not None or len(payload) > self.max_msg_size
                or (protocol_id | message_id) & ~0xFF):  # also true for negative ids
            self._refuse(protocol_id, message_id, payload, rx_size)
        in_flight = self._in_flight
        token = (self._last_token + 1) % TOKEN_MAX
        if token in in_flight:
            token = self._allocate_token()
        else:
            in_flight.add(token)
            if self._timed_out:
                self._timed_out.discard(token)  # reused: a stray reply is no longer "late"
            self._last_token = token
        value = message_id | protocol_id << 10 | token << 18
        header = _U32.pack(value)
        transport = self.transport
        try:
            transport.send(header + payload)
        except BaseException:
            in_flight.discard(token)
            raise
        try:
            deadline = time.monotonic() + self.timeout_s
            data = transport.receive(self.timeout_s)
            if data is not None and len(data) >= 8 and data[:4] == header:
                reply = data[4:] if rx_size is None else data[4 : 8 + rx_size]
                if type(reply) is not bytes:
                    reply = bytes(reply)
            else:
                reply = self._wait_slow(value, data, deadline)
                if rx_size is not None:
                    reply = reply[: 4 + rx_size]  # fetch_response
        except TransportError as exc:
            self._record(Exchange(protocol_id, message_id, token, payload, error=str(exc)))
            raise
        finally:
            in_flight.discard(token)
        status = _S32.unpack_from(reply)[0]
        exchange = _new_exchange((protocol_id, message_id, token, payload, status, reply[4:],
                                  None))
        self.log.append(exchange)
        if self.observers:
            for observer in list(self.observers):
                observer(exchange)
        return value, reply, status

    def _refuse(self, protocol_id: int, message_id: int, payload: bytes,
                rx_size: int | None) -> None:
        """Raise for what cannot be sent (sizes above max_msg_size, -ERANGE; ids that
        do not fit the header); return when all is in fact well."""
        if rx_size is not None and rx_size > self.max_msg_size:
            raise MessageSizeError(
                f"requested reply of {rx_size} bytes exceeds max_msg_size {self.max_msg_size}"
            )
        if len(payload) > self.max_msg_size:
            raise MessageSizeError(
                f"protocol {protocol_id:#x} message {message_id:#x}: payload of "
                f"{len(payload)} bytes exceeds max_msg_size {self.max_msg_size}"
            )
        if not (0 <= protocol_id <= 0xFF and 0 <= message_id <= 0xFF):
            Header(message_id, protocol_id, 0)  # raises ValueError naming the field

    def xfer(self, protocol_id: int, message_id: int, payload: bytes = b"", *,
             rx_size: int | None = None) -> Message:
        """Send a command and return its reply (any status). Logs the exchange."""
        value, reply, _status = self._roundtrip(int(protocol_id), int(message_id), payload,
                                                rx_size)
        return Message(Header.unpack(value), reply)

    def call(self, protocol_id: int, message_id: int, payload: bytes = b"", *,
             rx_size: int | None = None, what: str | None = None) -> bytes:
        """Like xfer, but raise ScmiStatusError unless SUCCESS; returns the values."""
        protocol_id, message_id = int(protocol_id), int(message_id)  # IntEnum -> plain int
        _value, reply, status = self._roundtrip(protocol_id, message_id, payload, rx_size)
        if status:  # not SUCCESS (0)
            label = what or f"protocol {protocol_id:#x} message {message_id:#x}"
            raise ScmiStatusError(label, status)
        return reply[4:]

    def _record(self, exchange: Exchange) -> None:
        self.log.append(exchange)
        if self.observers:
            for observer in list(self.observers):
                observer(exchange)

    def drain(self, timeout_s: float = 0.0) -> list[StrayReply]:
        """Collect replies still queued (late ones) into `errors`; returns the new ones."""
        before = len(self.errors)
        while (data := self.transport.receive(timeout_s)) is not None:
            try:
                got = Message.from_bytes(data).header
            except DecodeError:
                continue
            self.errors.append(StrayReply(got, bytes(data), got.token in self._timed_out))
            self._timed_out.discard(got.token)
        return self.errors[before:]

    def close(self) -> None:
        """Close the transport."""
        self.transport.close()


_U32 = struct.Struct("<I")
_S32 = struct.Struct("<i")
#: Exchange(*fields) without the named tuple's Python-level __new__ (hot path)
_new_exchange = cast(Callable[[tuple[Any, ...]], Exchange],
                     functools.partial(tuple.__new__, Exchange))
