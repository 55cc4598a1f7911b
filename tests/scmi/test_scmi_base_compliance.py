"""Base protocol checks keyed to the Arm SCMI compliance suite (scmi-tests test_pool/base).

Test ids follow base_testlist.c: b001 version, b002 attributes, b003 mandatory commands,
b004 vendor, b005 implementation version, b006 sub-vendor, b007 discover agent, b008
notify errors, b009 protocol list, b010 invalid message id, b011 set protocol
permissions, b012 set device permissions, b013 reset agent configuration, b014/b015
deny and restore protocol access (directly / by reset), b016/b017 the same for devices.
"""

from __future__ import annotations

import pytest

from memlat.scmi.platform import Command, ProtocolHandler, Reply
from memlat.scmi.protocols.base import BaseMessage as M
from memlat.scmi.protocols.base_platform import make_platform
from memlat.scmi.protocols.identity import AgentIdentity, PlatformIdentity
from memlat.scmi.status import Status as S
from memlat.wire import fixed_string, u32s

BASE = 0x10
OSPM, OTHER, UNTRUSTED = 1, 2, 3
ALLOW, DENY = 1, 0


class _Stub(ProtocolHandler):
    """A protocol with one command, so access can be observed."""

    def __init__(self, protocol_id: int):
        self.protocol_id = protocol_id
        self.version = 0x10000

    def commands(self) -> dict[int, Command]:
        return {0x3: Command(lambda ctx, payload: Reply.ok(u32s(0xC0DE)))}


IDENTITY = PlatformIdentity(
    agents=(AgentIdentity(id=OSPM, name="OSPM"), AgentIdentity(id=OTHER, name="PSCI"),
            AgentIdentity(id=UNTRUSTED, name="guest")),
    protocols=(0x13, 0x80),
    trusted_agents=frozenset({OSPM, OTHER}),
    implementation_version=0x0001_0203,
)


@pytest.fixture
def platform():
    platform = make_platform(IDENTITY)
    platform.register(_Stub(0x13))
    platform.register(_Stub(0x80))
    return platform


def test_b001_protocol_version(platform, check) -> None:
    check(platform, BASE, M.PROTOCOL_VERSION, [], S.SUCCESS, [0x20000])


def test_b002_protocol_attributes(platform, check) -> None:
    check(platform, BASE, M.PROTOCOL_ATTRIBUTES, [], S.SUCCESS, [2 | 3 << 8])


@pytest.mark.parametrize("message", list(M))
def test_b003_mandatory_and_optional_command_attributes(platform, check, message) -> None:
    check(platform, BASE, M.PROTOCOL_MESSAGE_ATTRIBUTES, [message], S.SUCCESS, [0])


def test_b004_vendor(platform, check) -> None:
    check(platform, BASE, M.DISCOVER_VENDOR, [], S.SUCCESS, fixed_string("Qualcomm", 16))


def test_b005_implementation_version(platform, check) -> None:
    check(platform, BASE, M.DISCOVER_IMPLEMENTATION_VERSION, [], S.SUCCESS, [0x0001_0203])


def test_b006_sub_vendor(platform, check) -> None:
    check(platform, BASE, M.DISCOVER_SUB_VENDOR, [], S.SUCCESS, fixed_string("CPUCP", 16))


def test_b007_discover_agent(platform, check) -> None:
    check(platform, BASE, M.DISCOVER_AGENT, [0], S.SUCCESS, u32s(0) + fixed_string("platform", 16))
    check(platform, BASE, M.DISCOVER_AGENT, [0xFFFF_FFFF], S.SUCCESS,
          u32s(OTHER) + fixed_string("PSCI", 16), agent_id=OTHER)
    for agent_id, name in ((1, "OSPM"), (2, "PSCI"), (3, "guest")):
        check(platform, BASE, M.DISCOVER_AGENT, [agent_id], S.SUCCESS,
              u32s(agent_id) + fixed_string(name, 16))
    check(platform, BASE, M.DISCOVER_AGENT, [4], S.NOT_FOUND)  # num_agents + 1


def test_b008_notify_errors(platform, check) -> None:
    check(platform, BASE, M.NOTIFY_ERRORS, [0x4], S.INVALID_PARAMETERS)
    assert platform.handlers[BASE].state() == frozenset()
    check(platform, BASE, M.NOTIFY_ERRORS, [1], S.SUCCESS, b"")
    assert platform.handlers[BASE].state() == frozenset({OSPM})
    check(platform, BASE, M.NOTIFY_ERRORS, [0], S.SUCCESS, b"")
    assert platform.handlers[BASE].state() == frozenset()


def test_b009_protocol_list_with_skip(platform, check) -> None:
    check(platform, BASE, M.DISCOVER_LIST_PROTOCOLS, [0], S.SUCCESS, [2, 0x8013])
    check(platform, BASE, M.DISCOVER_LIST_PROTOCOLS, [1], S.SUCCESS, [1, 0x80])
    check(platform, BASE, M.DISCOVER_LIST_PROTOCOLS, [2], S.SUCCESS, [0])  # skip == total: empty
    check(platform, BASE, M.DISCOVER_LIST_PROTOCOLS, [3], S.INVALID_PARAMETERS)
    check(platform, BASE, M.DISCOVER_LIST_PROTOCOLS, [8], S.INVALID_PARAMETERS)


def test_b009_protocol_list_pages_are_bounded(check) -> None:
    ids = tuple(range(0x11, 0x11 + 10))
    platform = make_platform(PlatformIdentity(protocols=ids, list_protocols_per_reply=4))
    got: list[int] = []
    for skip in (0, 4, 8):
        values = check(platform, BASE, M.DISCOVER_LIST_PROTOCOLS, [skip])
        count = int.from_bytes(values[:4], "little")
        assert count == min(4, 10 - skip)
        assert len(values) == 4 + 4 * ((count + 3) // 4)
        got.extend(values[4 : 4 + count])
    assert tuple(got) == ids


@pytest.mark.parametrize("message", [0xC, 0x10, 0x7F, 0xFF])
def test_b010_invalid_message_id(platform, check, message) -> None:
    check(platform, BASE, message, [], S.NOT_FOUND)
    check(platform, BASE, M.PROTOCOL_MESSAGE_ATTRIBUTES, [message], S.NOT_FOUND)


def test_b011_set_protocol_permissions_checks(platform, check) -> None:
    before = platform.state()
    check(platform, BASE, M.SET_PROTOCOL_PERMISSIONS, [4, 0, 0x13, ALLOW], S.NOT_FOUND)
    check(platform, BASE, M.SET_PROTOCOL_PERMISSIONS, [OSPM, 0, BASE, DENY], S.NOT_FOUND)
    check(platform, BASE, M.SET_PROTOCOL_PERMISSIONS, [OSPM, 0, 0x13, 4], S.INVALID_PARAMETERS)
    check(platform, BASE, M.SET_PROTOCOL_PERMISSIONS, [OSPM, 1, 0x13, DENY], S.NOT_FOUND)
    check(platform, BASE, M.SET_PROTOCOL_PERMISSIONS, [OSPM, 0, 0x42, DENY], S.NOT_FOUND)
    check(platform, BASE, M.SET_PROTOCOL_PERMISSIONS, [OSPM, 0, 0x13, DENY], S.DENIED,
          agent_id=UNTRUSTED)
    assert platform.state() == before


def test_b012_set_device_permissions_checks(platform, check) -> None:
    before = platform.state()
    check(platform, BASE, M.SET_DEVICE_PERMISSIONS, [4, 0, ALLOW], S.NOT_FOUND)
    check(platform, BASE, M.SET_DEVICE_PERMISSIONS, [OSPM, 0, 4], S.INVALID_PARAMETERS)
    check(platform, BASE, M.SET_DEVICE_PERMISSIONS, [OSPM, 1, DENY], S.NOT_FOUND)
    check(platform, BASE, M.SET_DEVICE_PERMISSIONS, [OSPM, 0, DENY], S.DENIED, agent_id=UNTRUSTED)
    assert platform.state() == before


def test_b013_reset_agent_configuration_checks(platform, check) -> None:
    check(platform, BASE, M.NOTIFY_ERRORS, [1], agent_id=OTHER)
    before = platform.state()
    check(platform, BASE, M.RESET_AGENT_CONFIGURATION, [4, 0], S.NOT_FOUND)
    check(platform, BASE, M.RESET_AGENT_CONFIGURATION, [OTHER, 2], S.INVALID_PARAMETERS)
    check(platform, BASE, M.RESET_AGENT_CONFIGURATION, [OTHER, 0], S.DENIED, agent_id=UNTRUSTED)
    assert platform.state() == before
    check(platform, BASE, M.RESET_AGENT_CONFIGURATION, [OTHER, 0], S.SUCCESS, b"")
    assert platform.handlers[BASE].state() == frozenset()  # notifications reset


def _uses(platform, check, agent_id: int, protocol: int, status: int) -> None:
    check(platform, protocol, 0x0, [], status, agent_id=agent_id)
    check(platform, protocol, 0x3, [], status, agent_id=agent_id)


def test_b014_deny_and_restore_protocol_access(platform, check) -> None:
    check(platform, BASE, M.SET_PROTOCOL_PERMISSIONS, [OTHER, 0, 0x13, DENY])
    _uses(platform, check, OTHER, 0x13, S.DENIED)
    _uses(platform, check, OTHER, 0x80, S.SUCCESS)  # only the one protocol
    _uses(platform, check, OSPM, 0x13, S.SUCCESS)  # only the one agent
    check(platform, BASE, M.PROTOCOL_VERSION, [], agent_id=OTHER)  # base stays reachable
    # the denied protocol disappears from the caller's discovery answers
    check(platform, BASE, M.PROTOCOL_ATTRIBUTES, [], S.SUCCESS, [1 | 3 << 8], agent_id=OTHER)
    check(platform, BASE, M.DISCOVER_LIST_PROTOCOLS, [0], S.SUCCESS, [1, 0x80], agent_id=OTHER)
    check(platform, BASE, M.SET_PROTOCOL_PERMISSIONS, [OTHER, 0, 0x13, ALLOW])
    _uses(platform, check, OTHER, 0x13, S.SUCCESS)


def test_b015_restore_protocol_access_by_reset(platform, check) -> None:
    check(platform, BASE, M.SET_PROTOCOL_PERMISSIONS, [OTHER, 0, 0x80, DENY])
    _uses(platform, check, OTHER, 0x80, S.DENIED)
    check(platform, BASE, M.RESET_AGENT_CONFIGURATION, [OTHER, 0])  # permissions kept
    _uses(platform, check, OTHER, 0x80, S.DENIED)
    check(platform, BASE, M.RESET_AGENT_CONFIGURATION, [OTHER, 1])  # permissions reset
    _uses(platform, check, OTHER, 0x80, S.SUCCESS)
    assert platform.denied == set()


def test_b016_deny_and_restore_device_access(platform, check) -> None:
    check(platform, BASE, M.SET_DEVICE_PERMISSIONS, [OTHER, 0, DENY])
    _uses(platform, check, OTHER, 0x13, S.DENIED)
    _uses(platform, check, OTHER, 0x80, S.DENIED)
    _uses(platform, check, OSPM, 0x80, S.SUCCESS)
    check(platform, BASE, M.DISCOVER_LIST_PROTOCOLS, [0], S.SUCCESS, [0], agent_id=OTHER)
    # the device is now inaccessible to OTHER: protocol permissions on it are NOT_FOUND
    check(platform, BASE, M.SET_PROTOCOL_PERMISSIONS, [OTHER, 0, 0x13, ALLOW], S.NOT_FOUND)
    check(platform, BASE, M.SET_DEVICE_PERMISSIONS, [OTHER, 0, ALLOW])
    _uses(platform, check, OTHER, 0x80, S.SUCCESS)


def test_b017_restore_device_access_by_reset(platform, check) -> None:
    check(platform, BASE, M.SET_DEVICE_PERMISSIONS, [OTHER, 0, DENY])
    _uses(platform, check, OTHER, 0x13, S.DENIED)
    check(platform, BASE, M.RESET_AGENT_CONFIGURATION, [OTHER, 1])
    _uses(platform, check, OTHER, 0x13, S.SUCCESS)
    assert platform.denied_devices == set()


# -- dispatcher statuses (SCP-firmware mod_scmi.c / mod_scmi_base.c) -----------------------
def test_unknown_protocol_is_not_supported(platform, check) -> None:
    check(platform, 0x15, 0x0, [], S.NOT_SUPPORTED)


def test_registered_but_unadvertised_protocol_is_not_supported(platform, check) -> None:
    platform.register(_Stub(0x14))
    check(platform, 0x14, 0x0, [], S.NOT_SUPPORTED)


@pytest.mark.parametrize(("message", "size"), [
    (M.PROTOCOL_VERSION, 4), (M.PROTOCOL_ATTRIBUTES, 1), (M.PROTOCOL_MESSAGE_ATTRIBUTES, 0),
    (M.PROTOCOL_MESSAGE_ATTRIBUTES, 8), (M.DISCOVER_VENDOR, 4), (M.DISCOVER_LIST_PROTOCOLS, 3),
    (M.DISCOVER_AGENT, 5), (M.NOTIFY_ERRORS, 0), (M.SET_DEVICE_PERMISSIONS, 8),
    (M.SET_PROTOCOL_PERMISSIONS, 12), (M.RESET_AGENT_CONFIGURATION, 4),
])
def test_wrong_payload_size_is_protocol_error(platform, check, message, size) -> None:
    before = platform.state()
    check(platform, BASE, message, bytes(size), S.PROTOCOL_ERROR)
    assert platform.state() == before


def test_platform_agent_target_is_accepted_without_effect(platform, check) -> None:
    before = platform.state()
    check(platform, BASE, M.SET_DEVICE_PERMISSIONS, [0, 0, DENY])
    check(platform, BASE, M.SET_PROTOCOL_PERMISSIONS, [0, 0, 0x13, DENY])
    check(platform, BASE, M.RESET_AGENT_CONFIGURATION, [0, 1])
    assert platform.state() == before


def test_protocols_added_to_advertised_are_listed(platform, check) -> None:
    platform.register(_Stub(0x14))
    platform.advertised.add(0x14)
    check(platform, BASE, M.DISCOVER_LIST_PROTOCOLS, [0], S.SUCCESS, [3, 0x801413])
    check(platform, 0x14, 0x3, [], S.SUCCESS, [0xC0DE])


def test_listed_but_unregistered_protocol_is_listed_and_not_supported(check) -> None:
    platform = make_platform(PlatformIdentity(protocols=(0x13, 0x80)))
    check(platform, BASE, M.DISCOVER_LIST_PROTOCOLS, [0], S.SUCCESS, [2, 0x8013])
    check(platform, 0x13, 0x0, [], S.NOT_SUPPORTED)
