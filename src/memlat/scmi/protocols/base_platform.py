"""The platform side of the SCMI base protocol (0x10): `BaseProtocol`, `make_platform`.

Statuses follow SCP-firmware (module/scmi/src/mod_scmi_base.c) and the Arm SCMI
compliance suite (scmi-tests test_pool/base/test_b0xx.c); where they disagree,
docs/scmi.md records the choice. Layouts: protocol.md §1.4.
"""

from __future__ import annotations

from collections.abc import Mapping

from memlat.scmi.platform import (
    DEVICE_ID,
    CallContext,
    Command,
    Platform,
    ProtocolHandler,
    Reply,
)
from memlat.scmi.protocols.base import (
    BASE_VERSION,
    FLAG_ALLOW,
    AgentInfo,
    BaseAttributes,
    BaseMessage,
    DiscoverAgentRequest,
    ListProtocolsRequest,
    NotifyErrorsRequest,
    ProtocolList,
    ResetAgentConfigurationRequest,
    SetDevicePermissionsRequest,
    SetProtocolPermissionsRequest,
    ShortName,
    U32Value,
)
from memlat.scmi.protocols.identity import (
    BASE_PROTOCOL_ID,
    CALLER_AGENT_ID,
    NAME_SIZE,
    PLATFORM_AGENT_ID,
    PlatformIdentity,
)
from memlat.scmi.status import Status


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
        return _permit(ctx.platform.denied_devices, (req.agent_id, DEVICE_ID), req.flags)

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
        return _permit(ctx.platform.denied, (req.agent_id, req.protocol_id), req.flags)

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


def _permit(denied: set[tuple[int, int]], key: tuple[int, int], flags: int) -> Reply:
    """Apply a permissions command to one denied set: bit 0 of flags allows `key`,
    clear denies it (SCMI v3.2 BASE_SET_DEVICE/PROTOCOL_PERMISSIONS)."""
    if flags & FLAG_ALLOW:
        denied.discard(key)
    else:
        denied.add(key)
    return Reply.ok()
