"""What an emulated platform says about itself through the base protocol (protocol.md §1.4).

decisions.md §1: vendor "Qualcomm" by default; vendor, sub-vendor, implementation version,
agent names and the advertised protocol list are configurable so other platforms can be
emulated. Defaults model the CPUCP `scmi-1` instance that carries only protocol@80
(protocol.md §1.6); see docs/scmi.md for each default and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from memlat.errors import ConfigError

NAME_SIZE = 16  # char[16] of DISCOVER_VENDOR / SUB_VENDOR / DISCOVER_AGENT, NUL included
BASE_PROTOCOL_ID = 0x10
PLATFORM_AGENT_ID = 0  # DISCOVER_AGENT 0 names the platform itself
CALLER_AGENT_ID = 0xFFFF_FFFF  # DISCOVER_AGENT 0xFFFFFFFF names the caller (base v2.0+)
PLATFORM_AGENT_NAME = "platform"  # scmi-tests b007 expects the name to start with this


def _short_name(value: str, what: str) -> str:
    if not value.isascii():
        raise ValueError(f"{what} {value!r} is not ASCII")
    if len(value) > NAME_SIZE - 1:
        raise ValueError(f"{what} {value!r} is longer than {NAME_SIZE - 1} characters")
    if "\0" in value:
        raise ValueError(f"{what} {value!r} contains a NUL")
    return value


class AgentIdentity(BaseModel):
    """One agent the platform knows: its id (1..) and its name (at most 15 ASCII chars)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int = Field(ge=1, lt=CALLER_AGENT_ID)
    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _short_name(value, "agent name")


class PlatformIdentity(BaseModel):
    """Identity and policy of an emulated SCMI platform.

    `protocols` lists the protocols advertised besides base (DISCOVER_LIST_PROTOCOLS
    answers the subset the caller may use); `trusted_agents` may change permissions;
    `list_protocols_per_reply` bounds one DISCOVER_LIST_PROTOCOLS reply so that agents
    must page with `skip`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    vendor: str = "Qualcomm"
    sub_vendor: str = "CPUCP"
    implementation_version: int = Field(default=0, ge=0, le=0xFFFF_FFFF)
    agents: tuple[AgentIdentity, ...] = (AgentIdentity(id=1, name="OSPM"),)
    protocols: tuple[int, ...] = (0x80,)
    trusted_agents: frozenset[int] = frozenset({1})
    list_protocols_per_reply: int = Field(default=4, ge=1, le=96)

    @field_validator("vendor", "sub_vendor")
    @classmethod
    def _names(cls, value: str) -> str:
        return _short_name(value, "vendor string")

    @field_validator("protocols")
    @classmethod
    def _protocols(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for pid in value:
            if not 0x11 <= pid <= 0xFF:
                raise ValueError(
                    f"protocol id {pid:#x} outside 0x11..0xff (base 0x10 is never listed)"
                )
        if len(set(value)) != len(value):
            raise ValueError(f"protocol ids repeat: {[hex(p) for p in value]}")
        return tuple(sorted(value))

    @model_validator(mode="after")
    def _agents(self) -> PlatformIdentity:
        ids = [agent.id for agent in self.agents]
        if len(set(ids)) != len(ids):
            raise ValueError(f"agent ids repeat: {ids}")
        if len(ids) > 0xFF:
            raise ValueError(f"{len(ids)} agents do not fit the 8-bit PROTOCOL_ATTRIBUTES field")
        if len(self.protocols) > 0xFF:
            raise ValueError(f"{len(self.protocols)} protocols do not fit 8 bits")
        unknown = sorted(set(self.trusted_agents) - set(ids))
        if unknown:
            raise ValueError(f"trusted agents {unknown} are not among the agents {ids}")
        return self

    # -- lookups ----------------------------------------------------------------------
    @property
    def num_agents(self) -> int:
        """Agents besides the platform (PROTOCOL_ATTRIBUTES bits 15:8)."""
        return len(self.agents)

    def agent_name(self, agent_id: int) -> str | None:
        """The name of `agent_id` (0 is the platform), None when unknown."""
        if agent_id == PLATFORM_AGENT_ID:
            return PLATFORM_AGENT_NAME
        for agent in self.agents:
            if agent.id == agent_id:
                return agent.name
        return None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str | None = None,
                     location: str = "identity") -> PlatformIdentity:
        """Validate a mapping (from YAML or JSON); problems raise ConfigError naming the field."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in (location, *first["loc"]))
            raise ConfigError(first["msg"], source=source, location=where) from exc
