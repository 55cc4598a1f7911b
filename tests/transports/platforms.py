"""A small platform for exercising transports: echo, delayed and never-answered commands.

Protocol 0xF0 (vendor range, protocol.md §1.1) with:

- 0x3 ECHO: any payload; replies SUCCESS with the same bytes.
- 0x4 DELAY: u32 milliseconds; sleeps that long, then replies SUCCESS with the u32.
  Used to produce late replies (a reply after the agent's timeout).
- 0x5 HANG: u32 milliseconds; sleeps that long and replies. With a long value it models
  a reply that never comes within any sane timeout.

`make_platform()` returns the project's emulated CPUCP platform with this protocol added,
so the same process serves both; `memlat platform serve --factory platforms:make_platform`
serves it from a child process (tests/transports/conftest.py).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Mapping

from memlat.scmi.platform import CallContext, Command, Platform, ProtocolHandler, Reply

TEST_PROTOCOL = 0xF0
MSG_ECHO = 0x3
MSG_DELAY = 0x4
MSG_HANG = 0x5


def _echo(ctx: CallContext, payload: bytes) -> Reply:
    return Reply.ok(payload)


def _sleep(ctx: CallContext, payload: bytes) -> Reply:
    (ms,) = struct.unpack_from("<I", payload)
    time.sleep(ms / 1000)
    return Reply.ok(payload)


class TransportTestProtocol(ProtocolHandler):
    """Protocol 0xF0: echo and deliberately slow commands."""

    protocol_id = TEST_PROTOCOL
    version = 0x10000

    def commands(self) -> Mapping[int, Command]:
        """ECHO (any size), DELAY and HANG (u32 ms)."""
        return {
            MSG_ECHO: Command(_echo, sizes=None),
            MSG_DELAY: Command(_sleep, sizes=(4,)),
            MSG_HANG: Command(_sleep, sizes=(4,)),
        }


def base_platform(soc: str | None = None) -> Platform:
    """The emulated CPUCP platform (base + 0x80) for `soc` (a SoC profile name)."""
    from memlat.config import load_config
    from memlat.cpucp.boot import make_cpucp_platform

    cfg = load_config(soc=soc) if soc else None
    made = (make_cpucp_platform(cfg.hardware(enforce_limits=True))
            if cfg is not None else make_cpucp_platform())
    return made[0]


def make_platform(soc: str | None = None) -> Platform:
    """`base_platform(soc)` plus the transport test protocol 0xF0."""
    platform = base_platform(soc)
    platform.register(TransportTestProtocol())
    advertised = getattr(platform, "advertised", None)
    if advertised is not None:
        advertised.add(TEST_PROTOCOL)
    return platform
