"""In-process transport: real bytes through a real SMT area, no Python objects passed.

The agent writes the command into an `SmtArea` over a bytearray and rings the doorbell;
the platform's doorbell handler reads the area, dispatches, and writes the reply back
before marking the channel FREE (protocol.md §1.5). So every message exercises the
shared-memory layout code exactly as the cross-process transport does.
"""

from __future__ import annotations

import time

from memlat.errors import TransportError
from memlat.scmi.message import Message
from memlat.scmi.platform import Platform
from memlat.scmi.smt import DEFAULT_AREA_SIZE, SmtArea
from memlat.scmi.transport import Transport


class InProcessTransport(Transport):
    """Agent-side transport to a `Platform` living in the same process."""

    name = "inproc"

    def __init__(self, platform: Platform, *, agent_id: int = 1,
                 area_size: int = DEFAULT_AREA_SIZE, interrupt: bool = True):
        self.platform = platform
        self.agent_id = agent_id
        self.interrupt = interrupt
        self.buffer = bytearray(area_size)
        self.area = SmtArea(self.buffer)
        self.area.reset()
        self.max_msg_size = self.area.max_payload
        self._reply_ready = False
        self.frames: list[tuple[bytes, bytes]] = []  # (command area, reply area) snapshots
        self.record_frames = False

    def send(self, message: bytes) -> None:
        """Write the command into the area and ring the platform's doorbell."""
        if not self.area.is_free:
            raise TransportError("inproc: channel busy (previous reply not consumed)")
        if len(message) < 4:
            Message.from_bytes(message)  # raises DecodeError naming the header
        self.area.write_command_bytes(message, interrupt=self.interrupt)
        command_frame = self.area.snapshot() if self.record_frames else b""
        self.platform.serve_area(self.area, self.agent_id)
        if self.record_frames:
            self.frames.append((command_frame, self.area.snapshot()))
        self._reply_ready = True

    def receive(self, timeout_s: float) -> bytes | None:
        """The reply in the area once the platform marked it FREE."""
        if not self._reply_ready or not self.area.is_free:
            # the platform answers synchronously: nothing pending now means nothing comes
            time.sleep(max(0.0, timeout_s))
            return None
        self._reply_ready = False
        if self.area.error_flagged:
            raise TransportError("inproc: platform flagged a channel error (malformed command)")
        return self.area.read_response_bytes()
