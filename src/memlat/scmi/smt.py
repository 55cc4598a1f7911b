"""The SMT shared-memory channel layout ("arm,scmi-shmem"), over any writable buffer.

Offsets and ownership rules follow protocol.md §1.5. The same class serves an in-process
bytearray, an mmap-ed file shared between processes, or a FUSE-backed mailbox buffer.
"""

from __future__ import annotations

import struct
from enum import IntFlag

from typing_extensions import Buffer

from memlat.errors import DecodeError
from memlat.scmi.header import Header
from memlat.scmi.message import Message

OFF_RESERVED = 0x00
OFF_CHANNEL_STATUS = 0x04
OFF_RESERVED2 = 0x08
OFF_FLAGS = 0x10
OFF_LENGTH = 0x14
OFF_HEADER = 0x18
OFF_PAYLOAD = 0x1C
HEADER_SIZE = OFF_PAYLOAD  # bytes before the payload (28); Linux counts 24 + 4 header
MAX_PAYLOAD_LINUX = 104  # SCMI_SHMEM_MAX_PAYLOAD_SIZE, kernels from late 2024
DEFAULT_AREA_SIZE = 0x200  # cpu_scp_lpri0 / lpri1 on X1E80100

_U32 = struct.Struct("<I")
_FREE = 0x1  # ChannelStatus.FREE as a plain int: the hot path avoids enum lookups
_ERROR = 0x2  # ChannelStatus.ERROR
_INTR = 0x1  # ChannelFlags.INTR_ENABLED


class ChannelFlaggedError(DecodeError):
    """channel_status has ERROR: the platform refused the command as unparsable."""


class ChannelStatus(IntFlag):
    """channel_status bits at offset 0x04."""

    FREE = 0x1
    ERROR = 0x2


class ChannelFlags(IntFlag):
    """flags bits at offset 0x10."""

    INTR_ENABLED = 0x1


class SmtArea:
    """One SMT area (one direction) laid over a writable buffer."""

    def __init__(self, buffer: Buffer, *, size: int | None = None):
        view = memoryview(buffer)
        if view.readonly:
            raise ValueError("SMT area needs a writable buffer")
        self._view = view.cast("B") if view.format != "B" else view
        self.size = len(self._view) if size is None else size
        if self.size > len(self._view):
            raise ValueError(f"SMT area of {self.size} bytes over a {len(self._view)}-byte buffer")
        if self.size < HEADER_SIZE:
            raise ValueError(f"SMT area of {self.size} bytes is smaller than {HEADER_SIZE}")
        self.max_payload = self.size - HEADER_SIZE

    # -- raw fields -------------------------------------------------------------------
    def _get(self, offset: int) -> int:
        return int(_U32.unpack_from(self._view, offset)[0])

    def _set(self, offset: int, value: int) -> None:
        _U32.pack_into(self._view, offset, value & 0xFFFF_FFFF)

    @property
    def channel_status(self) -> ChannelStatus:
        """Bits of channel_status (FREE, ERROR)."""
        return ChannelStatus(self._get(OFF_CHANNEL_STATUS) & 0x3)

    @channel_status.setter
    def channel_status(self, value: int) -> None:
        self._set(OFF_CHANNEL_STATUS, int(value))

    @property
    def flags(self) -> ChannelFlags:
        """Bits of flags (INTR_ENABLED)."""
        return ChannelFlags(self._get(OFF_FLAGS) & 0x1)

    @property
    def length(self) -> int:
        """The length field: header plus payload bytes."""
        return self._get(OFF_LENGTH)

    @property
    def header(self) -> Header:
        """The message header in the area."""
        return Header.unpack(self._get(OFF_HEADER))

    @property
    def is_free(self) -> bool:
        """The agent owns the channel (platform finished)."""
        return bool(self._get(OFF_CHANNEL_STATUS) & _FREE)

    def reset(self) -> None:
        """Zero the area and mark it free, as firmware does at boot."""
        self._view[: self.size] = bytes(self.size)
        self.channel_status = ChannelStatus.FREE

    # -- agent side -------------------------------------------------------------------
    def write_command(self, message: Message, *, interrupt: bool = True) -> None:
        """Agent: mark busy, then write flags, length, header and payload (shmem_tx_prepare)."""
        payload = bytes(message.payload)
        if len(payload) > self.max_payload:
            raise ValueError(
                f"payload of {len(payload)} bytes exceeds the area's {self.max_payload}"
            )
        self._set(OFF_CHANNEL_STATUS, 0)
        self._set(OFF_FLAGS, _INTR if interrupt else 0)
        self._set(OFF_LENGTH, 4 + len(payload))
        self._set(OFF_HEADER, message.header.pack())
        self._view[OFF_PAYLOAD : OFF_PAYLOAD + len(payload)] = payload

    def write_command_bytes(self, message: bytes, *, interrupt: bool = True) -> None:
        """`write_command` for a message already in wire form (header + payload): the
        header and payload are contiguous in the area (0x18, 0x1C), so one copy."""
        if len(message) < 4 or len(message) - 4 > self.max_payload:
            raise ValueError(f"message of {len(message)} bytes does not fit the area's "
                             f"4..{4 + self.max_payload}")
        view = self._view
        _U32.pack_into(view, OFF_CHANNEL_STATUS, 0)
        _U32.pack_into(view, OFF_FLAGS, _INTR if interrupt else 0)
        _U32.pack_into(view, OFF_LENGTH, len(message))
        view[OFF_HEADER : OFF_HEADER + len(message)] = message

    def read_response_bytes(self) -> bytes:
        """`read_response().to_bytes()` in one copy: header, status and values as they
        lie in the area. DecodeError (naming the length field) as read_response."""
        length = _U32.unpack_from(self._view, OFF_LENGTH)[0]
        if length < 8 or length - 4 > self.max_payload:
            self.read_response()  # raises the descriptive DecodeError
        return bytes(self._view[OFF_HEADER : OFF_HEADER + length])

    def post_command(self, message: bytes, *, interrupt: bool = True) -> bool:
        """`write_command_bytes` if the agent owns the channel (FREE): True once written,
        False (nothing written) while the platform still owns it. One call, for the
        cross-process agent's hot path."""
        view = self._view
        if not _U32.unpack_from(view, OFF_CHANNEL_STATUS)[0] & _FREE:
            return False
        n = len(message)
        if n < 4 or n - 4 > self.max_payload:
            raise ValueError(f"message of {n} bytes does not fit the area's "
                             f"4..{4 + self.max_payload}")
        _U32.pack_into(view, OFF_CHANNEL_STATUS, 0)
        _U32.pack_into(view, OFF_FLAGS, _INTR if interrupt else 0)
        _U32.pack_into(view, OFF_LENGTH, n)
        view[OFF_HEADER : OFF_HEADER + n] = message
        return True

    def take_response(self) -> bytes | None:
        """Agent: the reply in wire form once the platform marked the channel FREE, else
        None. ChannelFlaggedError when it set ERROR instead of replying; DecodeError
        (naming the length field) for a length the area cannot hold."""
        view = self._view
        status = _U32.unpack_from(view, OFF_CHANNEL_STATUS)[0]
        if not status & _FREE:
            return None
        if status & _ERROR:
            raise ChannelFlaggedError(
                "the platform flagged CHANNEL_ERROR (it could not parse the command)",
                offset=OFF_CHANNEL_STATUS, field="channel_status")
        length = _U32.unpack_from(view, OFF_LENGTH)[0]
        if length < 8 or length - 4 > self.max_payload:
            self.read_response()  # raises the descriptive DecodeError
        return bytes(view[OFF_HEADER : OFF_HEADER + length])

    @property
    def error_flagged(self) -> bool:
        """channel_status has the ERROR bit (the platform could not parse the command)."""
        return bool(self._get(OFF_CHANNEL_STATUS) & 0x2)

    def read_response(self, max_rx: int | None = None) -> Message:
        """Agent: the reply, with payload = min(max_rx + 4, length - 4) bytes.

        `max_rx` counts return values after the status word, like Linux's rx.len.
        """
        length = self.length
        if length < 8:
            raise DecodeError(
                f"reply length {length} is shorter than header plus status (8)",
                offset=OFF_LENGTH,
                field="length",
            )
        available = length - 4
        if available > self.max_payload:
            raise DecodeError(
                f"reply length {length} runs past the {self.size}-byte area",
                offset=OFF_LENGTH,
                field="length",
            )
        take = available if max_rx is None else min(available, 4 + max_rx)
        payload = bytes(self._view[OFF_PAYLOAD : OFF_PAYLOAD + take])
        return Message(self.header, payload)

    # -- platform side ----------------------------------------------------------------
    def read_command(self) -> Message:
        """Platform: the command in the area; a bad length raises DecodeError."""
        length = self.length
        if length < 4:
            raise DecodeError(
                f"command length {length} is shorter than the 4-byte header",
                offset=OFF_LENGTH,
                field="length",
            )
        if length - 4 > self.max_payload:
            raise DecodeError(
                f"command length {length} runs past the {self.size}-byte area",
                offset=OFF_LENGTH,
                field="length",
            )
        payload = bytes(self._view[OFF_PAYLOAD : OFF_PAYLOAD + length - 4])
        return Message(self.header, payload)

    def read_command_bytes(self) -> bytes:
        """`read_command().to_bytes()` in one copy: header and payload as they lie in
        the area. DecodeError (naming the length field) as read_command."""
        length = _U32.unpack_from(self._view, OFF_LENGTH)[0]
        if length < 4 or length - 4 > self.max_payload:
            self.read_command()  # raises the descriptive DecodeError
        return bytes(self._view[OFF_HEADER : OFF_HEADER + length])

    def write_response(self, message: Message) -> bool:
        """Platform: write length, header, payload, *then* mark FREE (protocol.md §1.5).

        Returns True when the agent asked for a completion interrupt.
        """
        payload = bytes(message.payload)[: self.max_payload]
        wants_irq = bool(self._get(OFF_FLAGS) & _INTR)
        self._set(OFF_LENGTH, 4 + len(payload))
        self._set(OFF_HEADER, message.header.pack())
        self._view[OFF_PAYLOAD : OFF_PAYLOAD + len(payload)] = payload
        self._set(OFF_CHANNEL_STATUS, _FREE)
        return wants_irq

    def take_command(self) -> bytes | None:
        """Platform: the command in wire form while the agent has handed the channel
        over (not FREE), else None (a spurious doorbell). DecodeError (naming the length
        field) for a length the area cannot hold. One call, for the hot path."""
        view = self._view
        if _U32.unpack_from(view, OFF_CHANNEL_STATUS)[0] & _FREE:
            return None
        length = _U32.unpack_from(view, OFF_LENGTH)[0]
        if length < 4 or length - 4 > self.max_payload:
            self.read_command()  # raises the descriptive DecodeError
        return bytes(view[OFF_HEADER : OFF_HEADER + length])

    def write_response_bytes(self, reply: bytes) -> bool:
        """`write_response` for a reply in wire form (header + status + values): length,
        then header and payload in one copy, *then* FREE. A reply longer than the area
        is cut to it, as write_response does. True when the agent asked for an IRQ."""
        view = self._view
        reply = reply[: 4 + self.max_payload]
        wants_irq = bool(_U32.unpack_from(view, OFF_FLAGS)[0] & _INTR)
        _U32.pack_into(view, OFF_LENGTH, len(reply))
        view[OFF_HEADER : OFF_HEADER + len(reply)] = reply
        _U32.pack_into(view, OFF_CHANNEL_STATUS, _FREE)
        return wants_irq

    def write_error(self) -> None:
        """Platform: flag a channel-level error and release the channel."""
        self.channel_status = ChannelStatus.FREE | ChannelStatus.ERROR

    def snapshot(self, used: int | None = None) -> bytes:
        """A copy of the first `used` bytes (default: header area plus length)."""
        end = used if used is not None else min(self.size, OFF_PAYLOAD + max(0, self.length - 4))
        return bytes(self._view[:end])
