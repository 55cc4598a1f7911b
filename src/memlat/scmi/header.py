"""The 32-bit SCMI message header (protocol.md §1.1)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from memlat.errors import DecodeError

TOKEN_MAX = 1024  # 10-bit token space; Linux MSG_TOKEN_MAX
_MSG_ID_MASK = 0xFF
_TYPE_SHIFT, _TYPE_MASK = 8, 0x3
_PROTO_SHIFT, _PROTO_MASK = 10, 0xFF
_TOKEN_SHIFT, _TOKEN_MASK = 18, 0x3FF
_RESERVED_MASK = 0xF000_0000


class MessageType(IntEnum):
    """Bits 9:8 of the header."""

    COMMAND = 0
    RESERVED = 1
    DELAYED_RESPONSE = 2
    NOTIFICATION = 3


class ProtocolId(IntEnum):
    """Standard protocol ids; 0x80..0xFF are vendor protocols."""

    BASE = 0x10
    POWER = 0x11
    SYSTEM = 0x12
    PERF = 0x13
    CLOCK = 0x14
    SENSOR = 0x15
    RESET = 0x16
    VOLTAGE = 0x17
    POWERCAP = 0x18
    PINCTRL = 0x19
    QCOM_GENERIC = 0x80


@dataclass(frozen=True, slots=True)
class Header:
    """A decoded SCMI header. `reserved` keeps bits 31:28 so decoding is lossless."""

    message_id: int
    protocol_id: int
    token: int = 0
    type: MessageType = MessageType.COMMAND
    reserved: int = 0

    def __post_init__(self) -> None:
        for name, value, limit in (
            ("message_id", self.message_id, 0xFF),
            ("protocol_id", self.protocol_id, 0xFF),
            ("token", self.token, TOKEN_MAX - 1),
            ("reserved", self.reserved, 0xF),
        ):
            if not 0 <= value <= limit:
                raise ValueError(f"header {name} {value} outside 0..{limit}")

    def pack(self) -> int:
        """The header as a u32."""
        return (
            self.message_id
            | int(self.type) << _TYPE_SHIFT
            | self.protocol_id << _PROTO_SHIFT
            | self.token << _TOKEN_SHIFT
            | self.reserved << 28
        )

    def to_bytes(self) -> bytes:
        """The header as 4 little-endian bytes."""
        return struct.pack("<I", self.pack())

    @classmethod
    def unpack(cls, value: int) -> Header:
        """Decode a u32 header."""
        cached = _UNPACKED.get(value)
        if cached is not None:
            return cached
        if not 0 <= value <= 0xFFFF_FFFF:
            raise DecodeError(f"header value {value:#x} is not a u32", offset=0, field="header")
        header = cls(
            message_id=value & _MSG_ID_MASK,
            type=_TYPES[(value >> _TYPE_SHIFT) & _TYPE_MASK],
            protocol_id=(value >> _PROTO_SHIFT) & _PROTO_MASK,
            token=(value >> _TOKEN_SHIFT) & _TOKEN_MASK,
            reserved=(value & _RESERVED_MASK) >> 28,
        )
        if len(_UNPACKED) < _UNPACKED_MAX:
            _UNPACKED[value] = header
        return header

    @classmethod
    def from_bytes(cls, data: bytes, offset: int = 0) -> Header:
        """Decode the header at `offset` of `data`."""
        if len(data) < offset + 4:
            raise DecodeError(
                f"need 4 header bytes, have {max(0, len(data) - offset)}",
                offset=offset,
                field="header",
            )
        return cls.unpack(struct.unpack_from("<I", data, offset)[0])

    def __str__(self) -> str:
        return (
            f"proto={self.protocol_id:#04x} msg={self.message_id:#04x} "
            f"type={self.type.name.lower()} token={self.token}"
        )


# Headers are immutable and few distinct values recur (protocol x message x token), so
# decoding memoises them: the agent and platform decode two headers per round trip.
_TYPES = tuple(MessageType)
_UNPACKED: dict[int, Header] = {}
_UNPACKED_MAX = 1 << 16
