"""Platform side of the Unix-socket transport: `UnixFrontEnd` (framing in
`memlat.transports.unix`)."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import struct

from memlat.errors import TransportError
from memlat.frontends.base import PlatformGate, PollingFrontEnd, as_gate, listen_owner_only
from memlat.frontends.paths import Created
from memlat.scmi.platform import Platform
from memlat.transports.unix import FrameBuffer, _send_all, encode_frame

log = logging.getLogger(__name__)


class UnixFrontEnd(PollingFrontEnd):
    """Platform side: a listening socket at `path` answering framed commands."""

    def __init__(self, platform: Platform | PlatformGate, path: str | os.PathLike[str], *,
                 agent_id: int = 1):
        super().__init__()
        self.gate = as_gate(platform)
        self.path = os.fspath(path)
        self.name = f"unix:{self.path}"
        self.agent_id = agent_id
        self.messages = 0
        self._listener = listen_owner_only(self.path, 16)
        self._created = Created.of(self.path)  # removed on stop only if still ours
        self._clients: dict[int, tuple[socket.socket, FrameBuffer]] = {}

    @property
    def clients(self) -> int:
        """Connected clients now."""
        return len(self._clients)

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._stop_r, select.POLLIN)
        poller.register(self._listener.fileno(), select.POLLIN)
        while not self._stopping:
            for fd, _ev in poller.poll(1000):
                if fd == self._stop_r:
                    return
                if fd == self._listener.fileno():
                    self._accept(poller)
                elif fd in self._clients:
                    self._serve_client(poller, fd)

    def _accept(self, poller: select.poll) -> None:
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        # bounds a send to a client that stopped reading; the kernel's SO_SNDTIMEO, not
        # settimeout(), which would make CPython poll() before every recv and send
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 1, 0))
        self._clients[conn.fileno()] = (conn, FrameBuffer(self.name))
        poller.register(conn.fileno(), select.POLLIN)

    def _drop(self, poller: select.poll, fd: int) -> None:
        conn, _ = self._clients.pop(fd)
        with contextlib.suppress(KeyError, ValueError):
            poller.unregister(fd)
        conn.close()

    def _serve_client(self, poller: select.poll, fd: int) -> None:
        conn, frames = self._clients[fd]
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(poller, fd)
            return
        frames.feed(data)
        try:
            while (frame := frames.next_frame()) is not None:
                self.messages += 1
                reply = self.gate.handle_bytes(frame, self.agent_id)
                if reply is not None:
                    _send_all(conn, encode_frame(reply))
        except TransportError as exc:
            log.warning("dropping client: %s", exc)
            self._drop(poller, fd)
        except OSError as exc:
            log.warning("dropping client %s: %s", self.name, exc)
            self._drop(poller, fd)

    def _release(self) -> None:
        for conn, _ in list(self._clients.values()):
            conn.close()
        self._clients.clear()
        self._listener.close()
        self._created.remove()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving and remove the socket file."""
        was_started = self._thread is not None
        super().stop(timeout_s)
        if not was_started:
            self._cleanup()
