"""An SCMI message: a header and a payload, to and from bytes (protocol.md §1.1-1.2).

A command payload holds the parameters; a response payload opens with the s32 status.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from memlat.errors import DecodeError
from memlat.scmi.header import Header, MessageType


@dataclass(frozen=True, slots=True)
class Message:
    """A header plus the bytes after it."""

    header: Header
    payload: bytes = b""

    def to_bytes(self) -> bytes:
        """Header then payload, as they travel."""
        return self.header.to_bytes() + bytes(self.payload)

    @classmethod
    def from_bytes(cls, data: bytes) -> Message:
        """Decode a whole message (at least the 4 header bytes)."""
        header = Header.from_bytes(data)
        return cls(header, bytes(data[4:]))

    @property
    def status(self) -> int:
        """The s32 status word of a response."""
        if len(self.payload) < 4:
            raise DecodeError(
                f"response payload of {len(self.payload)} bytes has no status word",
                offset=4,
                field="status",
            )
        return int(struct.unpack_from("<i", self.payload)[0])

    @property
    def values(self) -> bytes:
        """The return values of a response: the payload after the status word."""
        return self.payload[4:]

    @classmethod
    def command(cls, protocol_id: int, message_id: int, payload: bytes = b"",
                token: int = 0) -> Message:
        """Build a command (type 0)."""
        return cls(Header(message_id, protocol_id, token, MessageType.COMMAND), bytes(payload))

    @classmethod
    def response(cls, command_header: Header, status: int, values: bytes = b"") -> Message:
        """The synchronous response to `command_header`: the same header, status, values."""
        return cls(command_header, struct.pack("<i", status) + bytes(values))

    def describe(self) -> str:
        """One line for logs: the header and the payload in hex."""
        return f"{self.header} len={len(self.payload)} payload={self.payload.hex()}"

