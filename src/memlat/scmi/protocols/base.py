"""The SCMI base protocol (0x10): message ids and payload codecs (no I/O).

The platform side is `memlat.scmi.protocols.base_platform`, the agent side (Linux-order
discovery) `memlat.scmi.protocols.base_agent`.

Commands and layouts: protocol.md §1.4. Statuses follow SCP-firmware
(module/scmi/src/mod_scmi_base.c) and the Arm SCMI compliance suite (scmi-tests
test_pool/base/test_b0xx.c); where they disagree, docs/scmi.md records the choice.
The agent side replays Linux `drivers/firmware/arm_scmi/base.c` initialisation order
and its checks on DISCOVER_LIST_PROTOCOLS replies.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Self

from memlat.scmi.protocols.identity import (
    NAME_SIZE,
)
from memlat.wire import Reader, fixed_string, read_c_string, u32s

BASE_VERSION = 0x0002_0000  # protocol.md §1.4: what an emulator should report
NEGOTIATE_PROTOCOL_VERSION = 0x10  # protocol.md §1.3
QCOM_VENDOR = "Qualcomm"  # protocol.md §1.4 vendor-protocol binding of 0x80
FLAG_ALLOW = 0x1  # bit0 of the permission / notify / reset flags; other bits invalid


class BaseMessage(IntEnum):
    """Message ids of the base protocol (protocol.md §1.4)."""

    PROTOCOL_VERSION = 0x0
    PROTOCOL_ATTRIBUTES = 0x1
    PROTOCOL_MESSAGE_ATTRIBUTES = 0x2
    DISCOVER_VENDOR = 0x3
    DISCOVER_SUB_VENDOR = 0x4
    DISCOVER_IMPLEMENTATION_VERSION = 0x5
    DISCOVER_LIST_PROTOCOLS = 0x6
    DISCOVER_AGENT = 0x7
    NOTIFY_ERRORS = 0x8
    SET_DEVICE_PERMISSIONS = 0x9
    SET_PROTOCOL_PERMISSIONS = 0xA
    RESET_AGENT_CONFIGURATION = 0xB


# -- codec ------------------------------------------------------------------------------
# Codecs do no I/O. `unpack` ignores bytes after the fields it needs (firmware may leave
# stale bytes, protocol.md §5 item 11); the platform checks request sizes separately.


@dataclass(frozen=True, slots=True)
class _Words:
    """A structure made only of u32 fields, in declaration order."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0 <= value <= 0xFFFF_FFFF:
                raise ValueError(f"{type(self).__name__}.{f.name} {value} is not a u32")

    def pack(self) -> bytes:
        """The little-endian bytes."""
        return u32s(*(getattr(self, f.name) for f in fields(self)))

    @classmethod
    def unpack(cls, data: bytes, *, base: int = 0) -> Self:
        """Decode from `data`; `base` is the offset of data[0] in the message (for errors)."""
        reader = Reader(data, base=base, context=cls.__name__)
        return cls(*(reader.u32(f.name) for f in fields(cls)))


@dataclass(frozen=True, slots=True)
class MessageAttributesRequest(_Words):
    """PROTOCOL_MESSAGE_ATTRIBUTES request: the message id asked about."""

    message_id: int


@dataclass(frozen=True, slots=True)
class ListProtocolsRequest(_Words):
    """DISCOVER_LIST_PROTOCOLS request: how many protocols to skip."""

    skip: int


@dataclass(frozen=True, slots=True)
class DiscoverAgentRequest(_Words):
    """DISCOVER_AGENT request: 0 = platform, 0xFFFFFFFF = the caller."""

    agent_id: int


@dataclass(frozen=True, slots=True)
class NotifyErrorsRequest(_Words):
    """NOTIFY_ERRORS request: bit0 enables BASE_ERROR_EVENT."""

    notify_enable: int


@dataclass(frozen=True, slots=True)
class SetDevicePermissionsRequest(_Words):
    """SET_DEVICE_PERMISSIONS request: bit0 of flags allows access."""

    agent_id: int
    device_id: int
    flags: int


@dataclass(frozen=True, slots=True)
class SetProtocolPermissionsRequest(_Words):
    """SET_PROTOCOL_PERMISSIONS request: bit0 of flags allows access."""

    agent_id: int
    device_id: int
    protocol_id: int
    flags: int


@dataclass(frozen=True, slots=True)
class ResetAgentConfigurationRequest(_Words):
    """RESET_AGENT_CONFIGURATION request: bit0 of flags also resets permissions."""

    agent_id: int
    flags: int


@dataclass(frozen=True, slots=True)
class U32Value(_Words):
    """A single u32 return value (PROTOCOL_VERSION, IMPLEMENTATION_VERSION, attributes)."""

    value: int


@dataclass(frozen=True, slots=True)
class BaseAttributes:
    """Base PROTOCOL_ATTRIBUTES: [7:0] protocols excluding base, [15:8] agents."""

    num_protocols: int
    num_agents: int

    def __post_init__(self) -> None:
        for name in ("num_protocols", "num_agents"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise ValueError(f"BaseAttributes.{name} {getattr(self, name)} is not a u8")

    def to_int(self) -> int:
        """The attributes word."""
        return self.num_protocols | self.num_agents << 8

    def pack(self) -> bytes:
        """The little-endian bytes."""
        return u32s(self.to_int())

    @classmethod
    def unpack(cls, data: bytes, *, base: int = 0) -> BaseAttributes:
        """Decode; bits 31:16 are ignored."""
        word = Reader(data, base=base, context="BaseAttributes").u32("attributes")
        return cls(word & 0xFF, (word >> 8) & 0xFF)


@dataclass(frozen=True, slots=True)
class ShortName:
    """A char[16] NUL-terminated ASCII name (DISCOVER_VENDOR / SUB_VENDOR)."""

    name: str

    def __post_init__(self) -> None:
        if not self.name.isascii() or "\0" in self.name or len(self.name) >= NAME_SIZE:
            raise ValueError(f"name {self.name!r} is not 0..15 ASCII characters without NUL")

    def pack(self) -> bytes:
        """16 bytes, NUL-padded."""
        return fixed_string(self.name, NAME_SIZE)

    @classmethod
    def unpack(cls, data: bytes, *, base: int = 0) -> ShortName:
        """Decode the text before the first NUL, at most 15 characters like Linux's
        strscpy into char[16] (non-ASCII bytes become '?')."""
        raw = Reader(data, base=base, context="ShortName").raw(NAME_SIZE, "name")
        text = read_c_string(raw).replace("\ufffd", "?")
        return cls(text[: NAME_SIZE - 1])


@dataclass(frozen=True, slots=True)
class ProtocolList:
    """DISCOVER_LIST_PROTOCOLS values: u32 count, then u8 ids packed, zero-padded to 4."""

    protocols: tuple[int, ...]

    def __post_init__(self) -> None:
        for pid in self.protocols:
            if not 0 <= pid <= 0xFF:
                raise ValueError(f"protocol id {pid} is not a u8")

    def pack(self) -> bytes:
        """Count, ids, zero padding to a 4-byte multiple."""
        ids = bytes(self.protocols)
        return u32s(len(ids)) + ids + bytes(-len(ids) % 4)

    @classmethod
    def unpack(cls, data: bytes, *, base: int = 0) -> ProtocolList:
        """Decode count and ids (the padding is not required here; see `discover`)."""
        reader = Reader(data, base=base, context="ProtocolList")
        count = reader.u32("num_protocols")
        return cls(tuple(reader.raw(count, "protocols")))


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """DISCOVER_AGENT values (base v2.0+): u32 agent_id, char[16] name."""

    agent_id: int
    name: str

    def __post_init__(self) -> None:
        if not 0 <= self.agent_id <= 0xFFFF_FFFF:
            raise ValueError(f"agent_id {self.agent_id} is not a u32")
        ShortName(self.name)  # validates

    def pack(self) -> bytes:
        """20 bytes."""
        return u32s(self.agent_id) + ShortName(self.name).pack()

    @classmethod
    def unpack(cls, data: bytes, *, base: int = 0) -> AgentInfo:
        """Decode the v2.0 layout."""
        agent_id = Reader(data, base=base, context="AgentInfo").u32("agent_id")
        return cls(agent_id, ShortName.unpack(data[4:], base=base + 4).name)

    @classmethod
    def unpack_v1(cls, data: bytes, agent_id: int, *, base: int = 0) -> AgentInfo:
        """Decode the base v1.0 layout (name only); `agent_id` is the one asked for."""
        return cls(agent_id, ShortName.unpack(data, base=base).name)
