"""Fixtures for the SCMI core tests: a vhost-device-scmi-style `check` helper."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

import pytest

from memlat.scmi.header import Header
from memlat.scmi.platform import Platform
from memlat.scmi.status import Status
from memlat.wire import u32s

Params = Sequence[int] | bytes


class Checker:
    """Sends one command to a platform as raw bytes and asserts on the raw reply.

    Like vhost-device-scmi's `check_response`: every call uses a fresh token, checks the
    reply echoes the command header, checks the status, and optionally the values.
    """

    def __init__(self) -> None:
        self.token = 0

    def __call__(self, platform: Platform, protocol: int, message: int, params: Params = (),
                 status: int = Status.SUCCESS, values: Params | None = None, *,
                 agent_id: int = 1) -> bytes:
        payload = params if isinstance(params, bytes) else u32s(*params)
        header = Header(int(message), int(protocol), self.token % 1024)
        self.token += 1
        raw = platform.handle_bytes(header.to_bytes() + payload, agent_id)
        assert raw is not None, "platform refused a well-formed command"
        assert raw[:4] == header.to_bytes(), "reply header differs from the command header"
        assert len(raw) >= 8, "reply has no status word"
        (got,) = struct.unpack_from("<i", raw, 4)
        assert got == status, f"status {Status.describe(got)}, expected {Status.describe(status)}"
        if values is not None:
            want = values if isinstance(values, bytes) else u32s(*values)
            assert raw[8:] == want, f"values {raw[8:].hex()} != {want.hex()}"
        if got != Status.SUCCESS:
            assert raw[8:] == b"", "a failure reply carries values"
        return raw[8:]


@pytest.fixture
def check() -> Callable[..., bytes]:
    """The `check(platform, protocol, message, params, status, values)` helper."""
    return Checker()
