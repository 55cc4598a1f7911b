"""The SCMI base protocol (0x10): codec, platform-side handler, agent-side discovery.

Commands and layouts: protocol.md §1.4. Statuses follow SCP-firmware
(module/scmi/src/mod_scmi_base.c) and the Arm SCMI compliance suite (scmi-tests
test_pool/base/test_b0xx.c); where they disagree, docs/scmi.md records the choice.
The agent side replays Linux `drivers/firmware/arm_scmi/base.c` initialisation order
and its checks on DISCOVER_LIST_PROTOCOLS replies.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Self

from memlat.errors import TransportError
from memlat.scmi.agent import Agent
from memlat.scmi.platform import (
    DEVICE_ID,
    CallContext,
    Command,
    Platform,
    ProtocolHandler,
    Reply,
)
from memlat.scmi.protocols.identity import (
    BASE_PROTOCOL_ID,
    CALLER_AGENT_ID,
    NAME_SIZE,
    PLATFORM_AGENT_ID,
    PlatformIdentity,
)
from memlat.scmi.status import ScmiStatusError, Status
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


# -- platform side -----------------------------------------------------------------------


class BaseProtocol(ProtocolHandler):
    """The platform's base protocol, answering from a `PlatformIdentity`.

    Mutable state: which agents enabled error notifications (NOTIFY_ERRORS); the
    permission sets live on the `Platform` (`denied`, `denied_devices`).
    """

    protocol_id = BASE_PROTOCOL_ID
    version = BASE_VERSION

    def __init__(self, identity: PlatformIdentity | None = None):
        self.identity = identity or PlatformIdentity()
        self.notify_errors: set[int] = set()
        self._commands: dict[int, Command] = {
            BaseMessage.DISCOVER_VENDOR: Command(self._vendor),
            BaseMessage.DISCOVER_SUB_VENDOR: Command(self._sub_vendor),
            BaseMessage.DISCOVER_IMPLEMENTATION_VERSION: Command(self._impl_version),
            BaseMessage.DISCOVER_LIST_PROTOCOLS: Command(self._list_protocols, (4,)),
            BaseMessage.DISCOVER_AGENT: Command(self._discover_agent, (4,)),
            BaseMessage.NOTIFY_ERRORS: Command(self._notify_errors, (4,)),
            BaseMessage.SET_DEVICE_PERMISSIONS: Command(self._set_device_permissions, (12,)),
            BaseMessage.SET_PROTOCOL_PERMISSIONS: Command(self._set_protocol_permissions, (16,)),
            BaseMessage.RESET_AGENT_CONFIGURATION: Command(self._reset_agent_configuration, (8,)),
        }

    def commands(self) -> Mapping[int, Command]:
        """Base messages 0x3..0xB (0x0..0x2 are answered by the Platform)."""
        return self._commands

    def state(self) -> frozenset[int]:
        """Agents with error notifications enabled."""
        return frozenset(self.notify_errors)

    @staticmethod
    def advertised_protocols(platform: Platform) -> list[int]:
        """Protocols the platform offers besides base, ascending: `Platform.advertised`
        (seeded from the identity by `make_platform`), or every registered one if None."""
        offered = platform.advertised if platform.advertised is not None else platform.handlers
        return sorted(pid for pid in offered if pid != BASE_PROTOCOL_ID)

    def visible_protocols(self, ctx: CallContext) -> list[int]:
        """The advertised protocols the caller may use (SCP-firmware filters by permission)."""
        return [pid for pid in self.advertised_protocols(ctx.platform)
                if ctx.platform.allowed(ctx.agent_id, pid)]

    def attributes(self, ctx: CallContext) -> int:
        """Protocols visible to the caller, and the number of agents."""
        return BaseAttributes(len(self.visible_protocols(ctx)), self.identity.num_agents).to_int()

    # -- discovery ----------------------------------------------------------------------
    def _vendor(self, ctx: CallContext, payload: bytes) -> Reply:
        return Reply.ok(ShortName(self.identity.vendor).pack())

    def _sub_vendor(self, ctx: CallContext, payload: bytes) -> Reply:
        return Reply.ok(ShortName(self.identity.sub_vendor).pack())

    def _impl_version(self, ctx: CallContext, payload: bytes) -> Reply:
        return Reply.ok(U32Value(self.identity.implementation_version).pack())

    def _list_protocols(self, ctx: CallContext, payload: bytes) -> Reply:
        skip = ListProtocolsRequest.unpack(payload, base=4).skip
        visible = self.visible_protocols(ctx)
        if skip > len(visible):  # mod_scmi_base.c: skip > count -> INVALID_PARAMETERS
            return Reply.error(Status.INVALID_PARAMETERS)
        page = visible[skip : skip + self.identity.list_protocols_per_reply]
        return Reply.ok(ProtocolList(tuple(page)).pack())

    def _caller_name(self, agent_id: int) -> str:
        return self.identity.agent_name(agent_id) or f"agent{agent_id}"[: NAME_SIZE - 1]

    def _discover_agent(self, ctx: CallContext, payload: bytes) -> Reply:
        agent_id = DiscoverAgentRequest.unpack(payload, base=4).agent_id
        if agent_id == CALLER_AGENT_ID:
            return Reply.ok(AgentInfo(ctx.agent_id, self._caller_name(ctx.agent_id)).pack())
        name = self.identity.agent_name(agent_id)
        if name is None:
            return Reply.error(Status.NOT_FOUND)
        return Reply.ok(AgentInfo(agent_id, name).pack())

    def _notify_errors(self, ctx: CallContext, payload: bytes) -> Reply:
        enable = NotifyErrorsRequest.unpack(payload, base=4).notify_enable
        if enable & ~FLAG_ALLOW:  # scmi-tests b008: notify_enable 0x4 -> INVALID_PARAMETERS
            return Reply.error(Status.INVALID_PARAMETERS)
        if enable:
            self.notify_errors.add(ctx.agent_id)
        else:
            self.notify_errors.discard(ctx.agent_id)
        return Reply.ok()

    # -- permissions --------------------------------------------------------------------
    def _check_target(self, ctx: CallContext, agent_id: int, flags: int) -> Reply | None:
        """Common checks, in this order: trusted caller, known agent, valid flags."""
        if ctx.agent_id not in self.identity.trusted_agents:
            return Reply.error(Status.DENIED)
        if self.identity.agent_name(agent_id) is None:
            return Reply.error(Status.NOT_FOUND)
        if flags & ~FLAG_ALLOW:
            return Reply.error(Status.INVALID_PARAMETERS)
        return None

    def _set_device_permissions(self, ctx: CallContext, payload: bytes) -> Reply:
        req = SetDevicePermissionsRequest.unpack(payload, base=4)
        if refused := self._check_target(ctx, req.agent_id, req.flags):
            return refused
        if req.device_id != DEVICE_ID:
            return Reply.error(Status.NOT_FOUND)
        if req.agent_id == PLATFORM_AGENT_ID:  # SCP-firmware: accepted, nothing to change
            return Reply.ok()
        key = (req.agent_id, DEVICE_ID)
        if req.flags & FLAG_ALLOW:
            ctx.platform.denied_devices.discard(key)
        else:
            ctx.platform.denied_devices.add(key)
        return Reply.ok()

    def _set_protocol_permissions(self, ctx: CallContext, payload: bytes) -> Reply:
        req = SetProtocolPermissionsRequest.unpack(payload, base=4)
        if refused := self._check_target(ctx, req.agent_id, req.flags):
            return refused
        if req.device_id != DEVICE_ID or (req.agent_id, DEVICE_ID) in ctx.platform.denied_devices:
            return Reply.error(Status.NOT_FOUND)  # scmi-tests b011 check 4: inaccessible device
        # scmi-tests b011 check 2: base is no protocol of a device -> NOT_FOUND
        # (SCP-firmware answers DENIED here; docs/scmi.md)
        if req.protocol_id not in self.advertised_protocols(ctx.platform):
            return Reply.error(Status.NOT_FOUND)
        if req.agent_id == PLATFORM_AGENT_ID:
            return Reply.ok()
        key = (req.agent_id, req.protocol_id)
        if req.flags & FLAG_ALLOW:
            ctx.platform.denied.discard(key)
        else:
            ctx.platform.denied.add(key)
        return Reply.ok()

    def _reset_agent_configuration(self, ctx: CallContext, payload: bytes) -> Reply:
        req = ResetAgentConfigurationRequest.unpack(payload, base=4)
        if refused := self._check_target(ctx, req.agent_id, req.flags):
            return refused
        if req.agent_id == PLATFORM_AGENT_ID:
            return Reply.ok()
        self.notify_errors.discard(req.agent_id)
        if req.flags & FLAG_ALLOW:
            platform = ctx.platform
            platform.denied.difference_update({k for k in platform.denied if k[0] == req.agent_id})
            platform.denied_devices.difference_update(
                {k for k in platform.denied_devices if k[0] == req.agent_id}
            )
        return Reply.ok()


def make_platform(identity: PlatformIdentity | None = None) -> Platform:
    """A Platform with the base protocol registered, advertising `identity.protocols`.

    Other protocols (0x80) are registered on it afterwards. `Platform.advertised` starts
    as the identity's list: a registered protocol outside it answers NOT_SUPPORTED, and a
    listed one that nobody registered is still listed (and answers NOT_SUPPORTED), as a
    misconfigured firmware would. Adding an id to `platform.advertised` lists it too.
    """
    identity = identity or PlatformIdentity()
    platform = Platform(advertised=set(identity.protocols))
    platform.register(BaseProtocol(identity))
    return platform


# -- agent side --------------------------------------------------------------------------


@dataclass
class PlatformInfo:
    """What base discovery learnt; `warnings` lists ignored failures, as Linux logs them."""

    version: int
    num_protocols: int
    num_agents: int
    vendor: str = ""
    sub_vendor: str = ""
    implementation_version: int = 0
    protocols: tuple[int, ...] = ()
    agents: dict[int, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def implements(self, protocol_id: int) -> bool:
        """Was `protocol_id` in the DISCOVER_LIST_PROTOCOLS answer?"""
        return protocol_id in self.protocols

    def instantiable(self, protocol_id: int, vendor: str | None = None) -> bool:
        """Linux's rule for a DT `protocol@NN` child (protocol.md §1.4): listed, and for a
        vendor protocol (>= 0x80) the platform's vendor equals `vendor` ignoring case."""
        if not self.implements(protocol_id):
            return False
        if protocol_id >= 0x80:
            return vendor is not None and self.vendor.lower() == vendor.lower()
        return True


def _u32(values: bytes, what: str) -> int:
    """The first u32 of a reply's values; a reply without one is a transport-level fault."""
    if len(values) < 4:
        raise TransportError(f"{what}: reply has {len(values)} value bytes, no u32")
    return U32Value.unpack(values, base=8).value


def discover(agent: Agent) -> PlatformInfo:
    """Base protocol initialisation in Linux base.c order (protocol.md §1.4).

    PROTOCOL_VERSION and PROTOCOL_ATTRIBUTES failures raise ScmiStatusError; failures of
    the vendor, sub-vendor and implementation-version queries, of the list and of agent
    discovery are recorded in `warnings` and skipped.
    """
    base = BASE_PROTOCOL_ID
    version = _u32(agent.call(base, BaseMessage.PROTOCOL_VERSION, what="base PROTOCOL_VERSION"),
                   "base PROTOCOL_VERSION")
    attrs_raw = agent.call(base, BaseMessage.PROTOCOL_ATTRIBUTES, what="base PROTOCOL_ATTRIBUTES")
    attrs = BaseAttributes(*_attributes(attrs_raw))
    info = PlatformInfo(version, attrs.num_protocols, attrs.num_agents)

    for message, slot in ((BaseMessage.DISCOVER_VENDOR, "vendor"),
                          (BaseMessage.DISCOVER_SUB_VENDOR, "sub_vendor")):
        values = _ignored(agent, info, message)
        if values is not None and len(values) >= NAME_SIZE:
            setattr(info, slot, ShortName.unpack(values, base=8).name)
    values = _ignored(agent, info, BaseMessage.DISCOVER_IMPLEMENTATION_VERSION)
    if values is not None and len(values) >= 4:
        info.implementation_version = U32Value.unpack(values, base=8).value

    info.protocols = tuple(_list_protocols(agent, info))

    for agent_id in range(info.num_agents):
        values = _ignored(agent, info, BaseMessage.DISCOVER_AGENT, u32s(agent_id))
        if values is None:
            continue
        try:
            if version >> 16 >= 2:
                found = AgentInfo.unpack(values, base=8)
            else:
                found = AgentInfo.unpack_v1(values, agent_id, base=8)
        except ValueError as exc:  # DecodeError is a ValueError
            info.warnings.append(f"DISCOVER_AGENT {agent_id}: {exc}")
            continue
        info.agents[agent_id] = found.name
    return info


def _attributes(values: bytes) -> tuple[int, int]:
    word = _u32(values, "base PROTOCOL_ATTRIBUTES")
    return word & 0xFF, (word >> 8) & 0xFF


def _ignored(agent: Agent, info: PlatformInfo, message: BaseMessage,
             payload: bytes = b"") -> bytes | None:
    """Send a base command whose failure Linux ignores; None (and a warning) on failure."""
    try:
        return agent.call(BASE_PROTOCOL_ID, message, payload, what=f"base {message.name}")
    except (ScmiStatusError, TransportError) as exc:
        info.warnings.append(str(exc))
        return None


def _list_protocols(agent: Agent, info: PlatformInfo) -> list[int]:
    """DISCOVER_LIST_PROTOCOLS paging with Linux's checks (base.c implementation_list_get)."""
    found: list[int] = []
    while len(found) < info.num_protocols:
        values = _ignored(agent, info, BaseMessage.DISCOVER_LIST_PROTOCOLS, u32s(len(found)))
        if values is None:
            break
        if len(values) < 4:
            info.warnings.append(f"DISCOVER_LIST_PROTOCOLS: truncated reply ({len(values)} bytes)")
            break
        (count,) = struct.unpack_from("<I", values)
        if count == 0:
            break
        if count > info.num_protocols - len(found):
            info.warnings.append(
                f"DISCOVER_LIST_PROTOCOLS: {count} returned > {info.num_protocols - len(found)}"
                " remaining"
            )
            break
        if len(values) < 8:
            info.warnings.append(f"DISCOVER_LIST_PROTOCOLS: truncated reply ({len(values)} bytes)")
            break
        real, calc = len(values) - 4, 4 * ((count + 3) // 4)
        if real != calc:
            info.warnings.append(
                f"DISCOVER_LIST_PROTOCOLS: malformed reply, list of {real} bytes for "
                f"{count} ids (expected {calc})"
            )
            if real < calc:
                break
        found.extend(values[4 : 4 + count])
    return found


@dataclass(frozen=True, slots=True)
class ProtocolVersion:
    """A protocol's reported version and, if negotiation succeeded, the negotiated one."""

    reported: int
    negotiated: int | None = None

    @property
    def effective(self) -> int:
        """The version the agent speaks."""
        return self.negotiated if self.negotiated is not None else self.reported


def protocol_version(agent: Agent, protocol_id: int, supported: int) -> ProtocolVersion:
    """PROTOCOL_VERSION of a protocol, then Linux's negotiation rule (protocol.md §1.3).

    If the reported version is greater than `supported`, ask
    PROTOCOL_MESSAGE_ATTRIBUTES(NEGOTIATE_PROTOCOL_VERSION) and, on SUCCESS, send
    NEGOTIATE_PROTOCOL_VERSION(supported). A failed negotiation is not an error (Linux
    warns and carries on with the reported version).
    """
    values = agent.call(protocol_id, BaseMessage.PROTOCOL_VERSION,
                        what=f"protocol {protocol_id:#x} PROTOCOL_VERSION")
    reported = _u32(values, f"protocol {protocol_id:#x} PROTOCOL_VERSION")
    if reported <= supported:
        return ProtocolVersion(reported)
    check = agent.xfer(protocol_id, BaseMessage.PROTOCOL_MESSAGE_ATTRIBUTES,
                       MessageAttributesRequest(NEGOTIATE_PROTOCOL_VERSION).pack())
    if check.status != Status.SUCCESS:
        return ProtocolVersion(reported)
    reply = agent.xfer(protocol_id, NEGOTIATE_PROTOCOL_VERSION, u32s(supported))
    return ProtocolVersion(reported, supported if reply.status == Status.SUCCESS else None)

