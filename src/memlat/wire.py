"""Little-endian field reading and writing with offsets in every error.

Every codec in memlat reads through `Reader`, so a short or malformed buffer raises a
`DecodeError` naming the field and byte offset, never an IndexError or struct.error.
"""

from __future__ import annotations

import struct

from memlat.errors import DecodeError

_FORMATS = {"u8": "<B", "u16": "<H", "u32": "<I", "s32": "<i", "u64": "<Q"}


class Reader:
    """Reads little-endian fields from `data`, starting at `base` (reported in errors)."""

    def __init__(self, data: bytes, *, base: int = 0, context: str = ""):
        self.data = bytes(data)
        self.pos = 0
        self.base = base
        self.context = context

    def _need(self, size: int, field: str) -> None:
        if self.pos + size > len(self.data):
            have = len(self.data) - self.pos
            label = f"{self.context}.{field}" if self.context else field
            raise DecodeError(
                f"{label} needs {size} bytes, only {have} left",
                offset=self.base + self.pos,
                field=label,
            )

    def _field(self, kind: str, field: str) -> int:
        fmt = _FORMATS[kind]
        size = struct.calcsize(fmt)
        self._need(size, field)
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return int(value)

    def u8(self, field: str) -> int:
        """Read a u8."""
        return self._field("u8", field)

    def u16(self, field: str) -> int:
        """Read a little-endian u16."""
        return self._field("u16", field)

    def u32(self, field: str) -> int:
        """Read a little-endian u32."""
        return self._field("u32", field)

    def s32(self, field: str) -> int:
        """Read a little-endian s32."""
        return self._field("s32", field)

    def u64(self, field: str) -> int:
        """Read a little-endian u64."""
        return self._field("u64", field)

    def raw(self, size: int, field: str) -> bytes:
        """Read `size` raw bytes."""
        self._need(size, field)
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out

    def rest(self) -> bytes:
        """Everything not read yet."""
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out

    @property
    def offset(self) -> int:
        """Absolute offset of the next byte (base + position)."""
        return self.base + self.pos

    @property
    def remaining(self) -> int:
        """Bytes not read yet."""
        return len(self.data) - self.pos


def u32s(*values: int) -> bytes:
    """Pack values as consecutive little-endian u32 (each masked to 32 bits)."""
    return struct.pack(f"<{len(values)}I", *(v & 0xFFFF_FFFF for v in values))


def s32(value: int) -> bytes:
    """Pack one little-endian s32."""
    return struct.pack("<i", value)


def fixed_string(text: str, size: int) -> bytes:
    """ASCII text NUL-terminated and zero-padded to `size` bytes (truncated to size-1)."""
    raw = text.encode("ascii")[: size - 1]
    return raw + b"\0" * (size - len(raw))


def read_c_string(raw: bytes) -> str:
    """The ASCII text before the first NUL of a fixed-size field (undecodable bytes as ?)."""
    return raw.split(b"\0", 1)[0].decode("ascii", errors="replace")
