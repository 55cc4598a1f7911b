"""Platform side of the Unix-socket transport: `UnixFrontEnd` (framing in
`memlat.transports.unix`).

One thread serves every client through `poll()` on non-blocking sockets, so no client can
stall the others (docs/transports.md "Unix socket"):

- Each client has an input `FrameBuffer` and an output buffer. A turn answers at most
  `FRAMES_PER_TURN` frames of one client, then moves on; leftovers are served on the
  next pass, so a client that floods commands shares the platform round-robin.
- Replies are sent without blocking; what the socket does not take waits in the
  client's output buffer (POLLOUT). A client whose unsent replies exceed `OUT_LIMIT`
  bytes is not reading them: it is disconnected with a log line, so its memory stays
  bounded by the limit plus one turn of replies.
- accept() failing for lack of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM)
  takes the listener out of the poll set for a back-off (10 ms doubling to 1 s) with a
  log line, then tries again; clients already connected are served meanwhile. Any
  error of one client drops that client only.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from memlat.errors import TransportError
from memlat.frontends.base import PlatformGate, PollingFrontEnd, as_gate, listen_owner_only
from memlat.frontends.paths import Created
from memlat.scmi.platform import Platform
from memlat.transports.unix import FRAME_LENGTH as _LEN
from memlat.transports.unix import MAX_FRAME, FrameBuffer, encode_frame

log = logging.getLogger(__name__)

#: unsent reply bytes after which a client counts as not reading (~4,000 replies)
OUT_LIMIT = 64 * 1024
#: frames answered per client before the next client gets its turn
FRAMES_PER_TURN = 32
#: bytes read per recv(): a turn's worth of the largest frames
_RECV = FRAMES_PER_TURN * (4 + MAX_FRAME)
#: listen() backlog; the kernel caps it at net.core.somaxconn
BACKLOG = socket.SOMAXCONN
_NO_FDS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_BACKOFF_MIN_S, _BACKOFF_MAX_S = 0.010, 1.0
_IN, _OUT = select.POLLIN, select.POLLOUT
_GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL


@dataclass(eq=False)
class _Client:
    sock: socket.socket
    frames: FrameBuffer
    out: bytearray = field(default_factory=bytearray)
    backlog: bool = False  # whole frames left in `frames` after a turn
    events: int = _IN


class UnixFrontEnd(PollingFrontEnd):
    """Platform side: a listening socket at `path` answering framed commands."""

    def __init__(self, platform: Platform | PlatformGate, path: str | os.PathLike[str], *,
                 agent_id: int = 1, out_limit: int = OUT_LIMIT):
        super().__init__()
        self.gate = as_gate(platform)
        self.path = os.fspath(path)
        self.name = f"unix:{self.path}"
        self.agent_id = agent_id
        self.out_limit = out_limit
        self.messages = 0
        #: clients cut off because they stopped reading their replies
        self.cut_off = 0
        #: accept() failures for lack of descriptors or memory, survived
        self.accept_failures = 0
        self._listener = listen_owner_only(self.path, BACKLOG)
        self._created = Created.of(self.path)  # removed on stop only if still ours
        self._clients: dict[int, _Client] = {}
        self._poller = select.poll()
        self._listening = False
        self._backoff_s = 0.0
        self._resume_at = 0.0
        #: some client has whole frames left after its turn (see _turn)
        self._backlogged = False

    @property
    def clients(self) -> int:
        """Connected clients now."""
        return len(self._clients)

    # -- loop -------------------------------------------------------------------------
    def _run(self) -> None:
        self._poller.register(self._stop_r, _IN)
        self._listen(True)
        listener_fd, clients, poll = self._listener.fileno(), self._clients, self._poller.poll
        # the gate's handle_bytes, unrolled: its lock and the platform's method
        lock, handle = self.gate.lock, self.gate.platform.handle_bytes
        agent_id, pack = self.agent_id, _LEN.pack
        while not self._stopping:
            timeout_ms = 1000 if self._listening and not self._backlogged \
                else self._poll_timeout_ms()
            for fd, ev in poll(timeout_ms):
                client = clients.get(fd)
                if client is None:
                    if fd == self._stop_r:
                        return
                    if fd == listener_fd:
                        self._accept()
                    continue
                if ev != _IN or client.out or client.frames.data:
                    self._event(fd, ev)
                    continue
                # The usual case, inline (each call costs on every round trip): one
                # synchronous command in one recv(), nothing queued either way.
                try:
                    data = client.sock.recv(_RECV)
                except OSError:
                    self._event(fd, ev)  # EAGAIN, a reset: the general path sorts it out
                    continue
                n = len(data)
                if n < 8 or _LEN.unpack_from(data)[0] != n - 4 or n > 4 + MAX_FRAME:
                    self._take(fd, client, data)
                    continue
                self.messages += 1
                try:
                    with lock:
                        reply = handle(data[4:], agent_id)
                except Exception as exc:  # Platform never raises; if it did, only this client
                    log.exception("%s: unexpected error serving a client", self.name)
                    self._drop(fd, f"internal error {exc!r}")
                    continue
                if reply is not None:
                    self._reply(fd, client, pack(len(reply)) + reply)
            if self._backlogged:
                self._serve_backlogs()
            if not self._listening and time.monotonic() >= self._resume_at:
                self._listen(True)

    def _reply(self, fd: int, client: _Client, frame: bytes) -> None:
        """Send one reply frame; what the socket does not take waits in `client.out`."""
        try:
            sent = client.sock.send(frame, socket.MSG_NOSIGNAL)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._drop(fd, exc.strerror or str(exc))
            return
        if sent < len(frame):
            client.out += frame[sent:]
            self._after_turn(fd, client)

    def _take(self, fd: int, client: _Client, data: bytes) -> None:
        """What one recv() brought that is not exactly one whole frame: the connection's
        end, or bytes for the frame buffer (`_turn`), with `_event`'s error handling."""
        if not data:
            self._drop(fd)
            return
        with self._guarded(fd):
            client.frames.feed(data)
            self._turn(client)
            if fd in self._clients:
                self._after_turn(fd, client)

    def _poll_timeout_ms(self) -> int:
        if self._backlogged:
            return 0
        if not self._listening:
            return max(0, int((self._resume_at - time.monotonic()) * 1000) + 1)
        return 1000

    def _listen(self, on: bool) -> None:
        if on and not self._listening:
            self._poller.register(self._listener.fileno(), _IN)
        elif not on and self._listening:
            self._poller.unregister(self._listener.fileno())
        self._listening = on

    # -- connections ------------------------------------------------------------------
    def _accept(self) -> None:
        for _ in range(64):  # drain a burst of connections, but let clients run too
            try:
                conn, _ = self._listener.accept()
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in _NO_FDS:
                    self._back_off(exc)
                elif exc.errno not in (errno.ECONNABORTED, errno.EINTR, errno.EPROTO):
                    log.warning("%s: accept failed (%s); still serving", self.name, exc)
                break
            self._backoff_s = 0.0
            conn.setblocking(False)
            client = _Client(conn, FrameBuffer(self.name))
            self._clients[conn.fileno()] = client
            self._poller.register(conn.fileno(), _IN)

    def _back_off(self, exc: OSError) -> None:
        self.accept_failures += 1
        self._backoff_s = min(_BACKOFF_MAX_S, max(_BACKOFF_MIN_S, self._backoff_s * 2))
        self._resume_at = time.monotonic() + self._backoff_s
        self._listen(False)
        log.warning("%s: cannot accept a connection (%s); %d clients still served, "
                    "retrying in %.0f ms", self.name, exc.strerror or exc, len(self._clients),
                    self._backoff_s * 1000)

    def _drop(self, fd: int, why: str | None = None) -> None:
        client = self._clients.pop(fd, None)
        if client is None:
            return
        if why:  # logged before the close the client may be waiting to see
            log.warning("%s: dropping client fd %d: %s", self.name, fd, why)
        with contextlib.suppress(KeyError, ValueError):
            self._poller.unregister(fd)
        with contextlib.suppress(OSError):
            client.sock.close()

    # -- per client -------------------------------------------------------------------
    def _event(self, fd: int, ev: int) -> None:
        client = self._clients[fd]
        with self._guarded(fd):
            if ev & _OUT:
                self._flush(client)
            if ev & _IN:
                self._read(fd, client)
            elif ev & _GONE:
                self._drop(fd)
                return
            if fd in self._clients:
                self._after_turn(fd, client)

    @contextlib.contextmanager
    def _guarded(self, fd: int) -> Iterator[None]:
        """Any error while serving client `fd` drops that client only, with a log line;
        one client's fault never stops the server."""
        try:
            yield
        except TransportError as exc:
            self._drop(fd, str(exc))
        except OSError as exc:
            self._drop(fd, exc.strerror or str(exc))
        except Exception as exc:
            log.exception("%s: unexpected error serving a client", self.name)
            self._drop(fd, f"internal error {exc!r}")

    def _read(self, fd: int, client: _Client) -> None:
        try:
            data = client.sock.recv(_RECV)
        except BlockingIOError:
            return
        except ConnectionResetError:
            data = b""
        if not data:
            self._drop(fd)
            return
        client.frames.feed(data)
        self._turn(client)

    def _turn(self, client: _Client) -> None:
        """Answer up to FRAMES_PER_TURN frames; remember whether more are waiting. A
        corrupted length ends the client (TransportError), but only after the replies
        owed to the frames before it are sent: what the client gets does not depend on
        how its bytes were split between recv() calls."""
        for _ in range(FRAMES_PER_TURN):
            try:
                frame = client.frames.next_frame()
            except TransportError:
                with contextlib.suppress(OSError):
                    self._flush(client)
                raise
            if frame is None:
                client.backlog = False
                break
            self.messages += 1
            reply = self.gate.handle_bytes(frame, self.agent_id)
            if reply is not None:
                client.out += encode_frame(reply)
        else:
            client.backlog = self._backlogged = True
        self._flush(client)

    def _flush(self, client: _Client) -> None:
        while client.out:
            try:
                sent = client.sock.send(client.out, socket.MSG_NOSIGNAL)
            except BlockingIOError:
                break
            del client.out[:sent]

    def _after_turn(self, fd: int, client: _Client) -> None:
        if len(client.out) > self.out_limit:
            self._drop(fd, f"not reading its replies ({len(client.out)} bytes unsent, limit "
                           f"{self.out_limit}); disconnected")
            self.cut_off += 1
            return
        want = _IN | _OUT if client.out else _IN
        if want != client.events:
            self._poller.modify(fd, want)
            client.events = want

    def _serve_backlogs(self) -> None:
        self._backlogged = False  # set again by any turn that still leaves frames
        for fd, client in list(self._clients.items()):
            if client.backlog and fd in self._clients:
                with self._guarded(fd):
                    self._turn(client)
                    self._after_turn(fd, client)

    def _release(self) -> None:
        for client in list(self._clients.values()):
            with contextlib.suppress(OSError):
                client.sock.close()
        self._clients.clear()
        self._listener.close()
        self._created.remove()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving and remove the socket file."""
        was_started = self._thread is not None
        super().stop(timeout_s)
        if not was_started:
            self._cleanup()
