"""The platform (firmware) side: a registry of protocol handlers and one dispatcher.

Every command gets exactly one well-formed reply with the command's header
(protocol.md §1.1); nothing a caller sends makes `Platform.handle` raise. Statuses
follow the SCMI specification and SCP-firmware: an unknown or unadvertised protocol
answers NOT_SUPPORTED, an unknown message id NOT_FOUND, a payload of the wrong size
PROTOCOL_ERROR, a protocol the agent may not use DENIED.

Bounds (docs/scmi.md "Message size and reserved bits"): a command whose payload exceeds
the channel's `max_msg_size` (104 bytes, Linux SCMI_SHMEM_MAX_PAYLOAD_SIZE, protocol.md
§1.5) and a command header with any of the reserved bits 31:28 set (protocol.md §1.1:
"reserved, 0") are answered PROTOCOL_ERROR without reaching a handler; `handle_bytes`
checks the size before decoding anything past the header, so a huge buffer costs no
more than a small one.

Access control: `denied` holds (agent_id, protocol_id) pairs and `denied_devices`
(agent_id, device_id) pairs; the base protocol's permission commands edit both. This
emulator exposes one device, 0, that holds every protocol (docs/scmi.md), so denying
device 0 to an agent denies it every protocol but base.
"""

from __future__ import annotations

import logging
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from memlat.errors import DecodeError
from memlat.scmi.message import Message
from memlat.scmi.smt import MAX_PAYLOAD_LINUX, SmtArea
from memlat.scmi.status import Status

log = logging.getLogger(__name__)

# Messages every protocol implements (protocol.md §1.3).
PROTOCOL_VERSION = 0x0
PROTOCOL_ATTRIBUTES = 0x1
PROTOCOL_MESSAGE_ATTRIBUTES = 0x2
BASE_PROTOCOL_ID = 0x10
DEVICE_ID = 0  # the single device of this emulator (docs/scmi.md)

_U32 = struct.Struct("<I")
_S32 = struct.Struct("<i")
_TYPE_BITS = 0x3 << 8  # header bits 9:8, message type; 0 is a command (protocol.md §1.1)
_RESERVED_BITS = 0xF000_0000  # header bits 31:28, "reserved, 0" (protocol.md §1.1)


class Reply(NamedTuple):
    """What a command handler returns: a status and the return values after it
    (immutable; a named tuple because every command builds one)."""

    status: int
    values: bytes = b""

    @classmethod
    def ok(cls, values: bytes = b"") -> Reply:
        """A SUCCESS reply."""
        return cls(Status.SUCCESS, values)

    @classmethod
    def error(cls, status: Status) -> Reply:
        """A reply with only a failure status."""
        return cls(int(status))


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling: the agent id of the channel the command arrived on."""

    agent_id: int
    platform: Platform


CommandHandler = Callable[[CallContext, bytes], Reply]


@dataclass(frozen=True, slots=True)
class Command:
    """One implemented message: its handler and the request sizes it accepts.

    `sizes` None means the handler checks the size itself (variable-length payloads).
    """

    handler: CommandHandler
    sizes: tuple[int, ...] | None = (0,)
    attributes: int = 0


class ProtocolHandler(ABC):
    """One protocol on the platform side (one module per protocol, like Linux)."""

    protocol_id: int
    version: int

    @abstractmethod
    def commands(self) -> Mapping[int, Command]:
        """Implemented message ids beyond the three common ones, with their handlers."""

    def attributes(self, ctx: CallContext) -> int:
        """The PROTOCOL_ATTRIBUTES value."""
        return 0

    def state(self) -> Hashable:
        """A comparable, immutable snapshot of everything a command can change in this
        handler (for "a refused message changes no state" checks); every handler with
        mutable state must override it (the CPUCP returns its `CpucpSnapshot`), stateless
        handlers return None."""
        return None


@dataclass
class Platform:
    """Dispatches commands to protocol handlers and builds replies; never raises.

    `allowed(agent_id, protocol_id)` decides access; the base protocol's permission
    commands change it. `advertised` (None: every registered protocol) limits which
    registered protocols answer at all; others get NOT_SUPPORTED like unknown ones.
    `observers` see every (agent_id, command, reply) triple. `max_msg_size` is the
    channel's largest payload in bytes (104, Linux SCMI_SHMEM_MAX_PAYLOAD_SIZE); larger
    commands are answered PROTOCOL_ERROR.
    """

    handlers: dict[int, ProtocolHandler] = field(default_factory=dict)
    denied: set[tuple[int, int]] = field(default_factory=set)
    observers: list[Callable[[int, Message, Message | None], None]] = field(default_factory=list)
    denied_devices: set[tuple[int, int]] = field(default_factory=set)
    advertised: set[int] | None = None
    max_msg_size: int = MAX_PAYLOAD_LINUX
    #: one immutable CallContext per agent id, built on its first command
    _contexts: dict[int, CallContext] = field(default_factory=dict, init=False, repr=False,
                                              compare=False)

    def register(self, handler: ProtocolHandler) -> None:
        """Add a protocol handler (replacing one with the same id)."""
        self.handlers[handler.protocol_id] = handler

    def protocol_ids(self) -> list[int]:
        """Registered protocol ids, ascending."""
        return sorted(self.handlers)

    def is_advertised(self, protocol_id: int) -> bool:
        """Does the platform offer `protocol_id` at all (base always)?"""
        if protocol_id == BASE_PROTOCOL_ID:
            return protocol_id in self.handlers
        return self.advertised is None or protocol_id in self.advertised

    def allowed(self, agent_id: int, protocol_id: int) -> bool:
        """May `agent_id` use `protocol_id`? Base (0x10) is always allowed."""
        if protocol_id == BASE_PROTOCOL_ID:
            return True
        return ((agent_id, DEVICE_ID) not in self.denied_devices
                and (agent_id, protocol_id) not in self.denied)

    def state(self) -> tuple[Hashable, ...]:
        """A comparable snapshot of everything commands can change (tests use it to
        show that a refused command changed nothing)."""
        return (
            frozenset(self.denied),
            frozenset(self.denied_devices),
            tuple((pid, self.handlers[pid].state()) for pid in sorted(self.handlers)),
        )

    # -- dispatch ---------------------------------------------------------------------
    def handle(self, command: Message, agent_id: int = 1) -> Message | None:
        """The reply to one command, or None when it is not a command (no reply owed)."""
        reply = self.handle_bytes(command.to_bytes(), agent_id)
        return None if reply is None else Message(command.header, reply[4:])

    def handle_bytes(self, data: bytes, agent_id: int = 1) -> bytes | None:
        """Raw command bytes in, raw reply bytes out; None is a transport-level refusal
        (fewer than 4 bytes, or a message that is not a command).

        Every transport's hot path, so it builds no Header or Message object unless
        observers watch: the reply is the command's own header bytes (a response carries
        its command's header, protocol.md §1.1), the s32 status and the return values.
        Only the header and at most `max_msg_size` + 1 payload bytes are ever copied: an
        oversized command is answered PROTOCOL_ERROR from its header alone.
        """
        if len(data) < 4:
            return None
        value = _U32.unpack_from(data)[0]
        payload = data[4 : 5 + self.max_msg_size]  # one byte past the largest is enough
        if value & _TYPE_BITS:  # not a command: no reply owed
            reply = None
        else:
            protocol_id = (value >> 10) & 0xFF
            handler = self.handlers.get(protocol_id)
            # Malformed before any protocol looks at it (docs/scmi.md): reserved header
            # bits set, or a payload the channel cannot carry. SCMI status PROTOCOL_ERROR,
            # as SCP-firmware answers a payload of the wrong size.
            if value & _RESERVED_BITS or len(payload) > self.max_msg_size:
                status, values = _PROTOCOL_ERROR
            # SCP-firmware mod_scmi.c: a protocol without a handler answers NOT_SUPPORTED;
            # base is always offered and allowed
            elif handler is None or (protocol_id != BASE_PROTOCOL_ID
                                     and not self.is_advertised(protocol_id)):
                status, values = Status.NOT_SUPPORTED, b""
            elif protocol_id != BASE_PROTOCOL_ID and not self.allowed(agent_id, protocol_id):
                status, values = Status.DENIED, b""
            else:
                status, values = self._call(handler, agent_id, value & 0xFF, payload)
            reply = bytes(data[:4]) + _S32.pack(status) + values
        if self.observers:
            self._notify(agent_id, data[: 5 + self.max_msg_size], reply)
        return reply

    def _notify(self, agent_id: int, command: bytes, reply: bytes | None) -> None:
        message = Message.from_bytes(command)
        answer = None if reply is None else Message(message.header, reply[4:])
        for observer in list(self.observers):
            observer(agent_id, message, answer)

    def serve_area(self, area: SmtArea, agent_id: int = 1) -> bool:
        """Answer the command in an SMT area (doorbell handler). True if an IRQ is owed.

        A length the area cannot hold, or a message that is not a command, flags
        CHANNEL_ERROR (and releases the channel) instead of replying."""
        try:
            command = area.read_command_bytes()
        except DecodeError:
            area.write_error()
            return bool(area.flags)
        reply = self.handle_bytes(command, agent_id)
        if reply is None:
            area.write_error()
            return bool(area.flags)
        return area.write_response_bytes(reply)

    def _call(self, handler: ProtocolHandler, agent_id: int, message_id: int,
              payload: bytes) -> Reply:
        """One message of an allowed protocol: the common messages (protocol.md §1.3),
        then the handler's table; a handler's DecodeError is PROTOCOL_ERROR, any other
        exception GENERIC_ERROR (the platform never raises on input)."""
        try:
            if message_id == PROTOCOL_VERSION:
                return _PROTOCOL_ERROR if payload else Reply(Status.SUCCESS,
                                                             _U32.pack(handler.version))
            ctx = self._contexts.get(agent_id)
            if ctx is None:
                ctx = self._contexts[agent_id] = CallContext(agent_id, self)
            if message_id == PROTOCOL_ATTRIBUTES:
                return _sized(payload, (0,)) or Reply.ok(_U32.pack(handler.attributes(ctx)))
            commands = handler.commands()
            if message_id == PROTOCOL_MESSAGE_ATTRIBUTES:
                return _sized(payload, (4,)) or _message_attributes(commands, payload)
            command = commands.get(message_id)
            if command is None:
                return Reply(Status.NOT_FOUND)
            if command.sizes is not None and len(payload) not in command.sizes:
                return _PROTOCOL_ERROR
            return command.handler(ctx, payload)
        except DecodeError:
            return _PROTOCOL_ERROR
        except Exception:  # the platform never raises on input (issue contract)
            log.exception("handler of protocol %#x message %#x failed",
                          handler.protocol_id, message_id)
            return Reply(Status.GENERIC_ERROR)


_PROTOCOL_ERROR = Reply(Status.PROTOCOL_ERROR)


def _sized(payload: bytes, sizes: tuple[int, ...]) -> Reply | None:
    """PROTOCOL_ERROR when the payload has none of the accepted sizes, else None."""
    return None if len(payload) in sizes else Reply.error(Status.PROTOCOL_ERROR)


def _message_attributes(commands: Mapping[int, Command], payload: bytes) -> Reply:
    (message_id,) = struct.unpack_from("<I", payload)
    if message_id in (PROTOCOL_VERSION, PROTOCOL_ATTRIBUTES, PROTOCOL_MESSAGE_ATTRIBUTES):
        return Reply.ok(struct.pack("<I", 0))
    command = commands.get(message_id)
    if command is None:
        return Reply.error(Status.NOT_FOUND)
    return Reply.ok(struct.pack("<I", command.attributes))
