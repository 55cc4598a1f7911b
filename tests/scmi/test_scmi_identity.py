"""PlatformIdentity: CPUCP defaults and configuration errors that name the field."""

from __future__ import annotations

import pytest

from memlat.errors import ConfigError
from memlat.scmi.protocols.identity import PlatformIdentity


def test_cpucp_defaults() -> None:
    identity = PlatformIdentity()
    assert (identity.vendor, identity.sub_vendor, identity.implementation_version) == (
        "Qualcomm", "CPUCP", 0)
    assert identity.protocols == (0x80,)
    assert [(a.id, a.name) for a in identity.agents] == [(1, "OSPM")]
    assert identity.trusted_agents == frozenset({1})
    assert identity.agent_name(0) == "platform" and identity.agent_name(2) is None


def test_protocols_are_sorted() -> None:
    assert PlatformIdentity(protocols=(0x80, 0x13)).protocols == (0x13, 0x80)


@pytest.mark.parametrize(("data", "location", "message"), [
    ({"vendor": "Qualcomm Technologies"}, "identity.vendor", "longer than 15"),
    ({"sub_vendor": "Qualcömm"}, "identity.sub_vendor", "not ASCII"),
    ({"protocols": [0x10]}, "identity.protocols", "base 0x10 is never listed"),
    ({"protocols": [0x80, 0x80]}, "identity.protocols", "repeat"),
    ({"agents": [{"id": 0, "name": "x"}]}, "identity.agents.0.id", "greater than or equal"),
    ({"agents": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]}, "identity", "agent ids repeat"),
    ({"trusted_agents": [5]}, "identity", "not among the agents"),
    ({"list_protocols_per_reply": 0}, "identity.list_protocols_per_reply", "greater than"),
    ({"vendr": "x"}, "identity.vendr", "Extra inputs"),
])
def test_bad_identity_names_file_and_field(data: dict, location: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        PlatformIdentity.from_mapping(data, source="soc.yaml")
    assert info.value.source == "soc.yaml"
    assert info.value.location == location
