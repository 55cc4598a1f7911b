"""The agent side of the SCMI base protocol (0x10): discovery as Linux does it.

Replays Linux `drivers/firmware/arm_scmi/base.c` initialisation order and its checks on
DISCOVER_LIST_PROTOCOLS replies (protocol.md §1.4).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from memlat.errors import ScmiTimeout, TransportError
from memlat.scmi.agent import Agent
from memlat.scmi.protocols.base import (
    NEGOTIATE_PROTOCOL_VERSION,
    AgentInfo,
    BaseAttributes,
    BaseMessage,
    MessageAttributesRequest,
    ShortName,
    U32Value,
)
from memlat.scmi.protocols.identity import (
    BASE_PROTOCOL_ID,
    NAME_SIZE,
)
from memlat.scmi.status import ScmiStatusError, Status
from memlat.wire import u32s


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
    #: the ignored failures that were the transport's (timeouts), not the platform's
    #: answer: when a later step finds nothing, the first of these is the real cause
    transport_errors: list[str] = field(default_factory=list)

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
    discovery are recorded in `warnings` and skipped, as Linux ignores them. A timeout is
    also recorded in `transport_errors`; any other TransportError (the connection is
    gone) raises at once, naming the command, because every later command would fail
    the same way and the empty protocol list would hide why.
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
    """Send a base command whose failure Linux ignores; None (and a warning) on failure.

    A lost connection is not ignored: TransportError naming the command."""
    try:
        return agent.call(BASE_PROTOCOL_ID, message, payload, what=f"base {message.name}")
    except ScmiStatusError as exc:
        info.warnings.append(str(exc))
        return None
    except ScmiTimeout as exc:
        info.warnings.append(f"base {message.name}: {exc}")
        info.transport_errors.append(f"base {message.name}: {exc}")
        return None
    except TransportError as exc:
        raise TransportError(f"base {message.name}: {exc}") from exc


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
