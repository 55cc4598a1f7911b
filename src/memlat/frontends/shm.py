"""Platform side of the shared-memory SMT channel: `ShmFrontEnd` (layout and doorbells in
`memlat.transports.shm`)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import struct
import threading
import time

from memlat.errors import DecodeError
from memlat.frontends.base import PlatformGate, PollingFrontEnd, as_gate, listen_owner_only
from memlat.frontends.paths import Created
from memlat.scmi.platform import Platform
from memlat.scmi.smt import DEFAULT_AREA_SIZE, OFF_RESERVED2, SmtArea
from memlat.transports.shm import (
    _SPIN_S,
    A2P_OFFSET,
    DEFAULT_DOORBELL,
    DOORBELLS,
    P2A_OFFSET,
    _Doorbell,
    control_path,
    create_channel,
)

log = logging.getLogger(__name__)


# -- platform side --------------------------------------------------------------------
class ShmFrontEnd(PollingFrontEnd):
    """Serves `platform` on the shared-memory channel `path` (one agent at a time).

    The channel memory is a sealed memfd (`create_channel`) sent to each agent with its
    doorbells over the control socket `path`.ctl; no file is created at `path` itself.
    A new connection first checks, synchronously, whether the current agent has closed
    its control socket, so an agent that closes and reconnects at once is never told
    the channel is in use.

    Threads: the serving thread (`start()`) accepts agents, watches the current agent's
    control socket and the stop request, and spins for the ``poll`` doorbell; with an
    eventfd or pipe doorbell, a doorbell thread per connected agent waits in a blocking
    read of the A2P doorbell and serves each ring (`_ring_loop`). Only the serving thread
    connects and drops agents, and it joins the doorbell thread before closing anything.
    """

    def __init__(self, platform: Platform | PlatformGate, path: str | os.PathLike[str], *,
                 doorbell: str = DEFAULT_DOORBELL, agent_id: int = 1):
        super().__init__()
        if doorbell not in DOORBELLS:
            raise ValueError(f"doorbell must be one of {', '.join(DOORBELLS)}, not {doorbell!r}")
        self.gate = as_gate(platform)
        self.path = os.fspath(path)
        self.name = f"shm:{self.path}"
        self.doorbell = doorbell
        self.agent_id = agent_id
        self.messages = 0
        self._fd, self._mm = create_channel()
        self.area = SmtArea(memoryview(self._mm)[A2P_OFFSET:A2P_OFFSET + DEFAULT_AREA_SIZE])
        self.area.reset()
        SmtArea(memoryview(self._mm)[P2A_OFFSET:P2A_OFFSET + DEFAULT_AREA_SIZE]).reset()
        self._listener = listen_owner_only(control_path(self.path), 4)
        self._created = Created.of(control_path(self.path))  # removed on stop if still ours
        self._client: socket.socket | None = None
        self._a2p: _Doorbell | None = None
        self._p2a: _Doorbell | None = None
        self._rings: _RingServer | None = None  # the doorbell thread of the agent
        self._last_seq = 0  # the poll doorbell's sequence word as last served

    # -- connection management --------------------------------------------------------
    def _accept(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        except OSError as exc:  # EMFILE and kin: keep serving the agent we have
            log.warning("%s: cannot accept a connection (%s); retrying", self.name,
                        exc.strerror or exc)
            time.sleep(0.010)
            return
        if self._client is not None and self._client_gone():
            self._drop_client()  # it closed before this connect: deterministic hand-over
        if self._client is not None:
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"error": f"channel {self.path} already in use by "
                                                  "another agent"}).encode())
            conn.close()
            return
        self.area.reset()
        hello = {"doorbell": self.doorbell, "a2p": A2P_OFFSET, "p2a": P2A_OFFSET,
                 "size": DEFAULT_AREA_SIZE}
        fds: list[int] = [self._fd]
        if self.doorbell != "poll":
            self._a2p = _Doorbell.create(self.doorbell, blocking_read=True)
            self._p2a = _Doorbell.create(self.doorbell)
            fds += [self._a2p.write_fd, self._p2a.read_fd]
        try:
            socket.send_fds(conn, [json.dumps(hello).encode()], fds)
        except OSError:
            conn.close()
            self._drop_client()
            return
        conn.setblocking(False)
        self._client = conn
        self._last_seq = 0  # area.reset() zeroed the poll doorbell's sequence word
        if self._a2p is not None and self._p2a is not None:
            self._rings = _RingServer(self, self._a2p, self._p2a)

    def _drop_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.close()
        self._client = None
        if self._rings is not None:  # it owns the doorbells while its thread runs
            self._rings.stop()
            self._rings = None
        else:
            for bell in (self._a2p, self._p2a):
                if bell is not None:
                    bell.close()
        self._a2p = self._p2a = None
        self.area.reset()

    def _client_gone(self) -> bool:
        try:
            data = self._client.recv(64) if self._client is not None else b""
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        return not data

    def _serve_one(self) -> None:
        """Answer the command in the A2P area, if the agent handed the channel over (a
        ring with the channel FREE is spurious and ignored). Platform.serve_area's
        rules: an unreadable length or a non-command flags CHANNEL_ERROR instead."""
        area = self.area
        try:
            command = area.take_command()
        except DecodeError:
            command = b""  # unreadable: flagged below, like an undecodable header
        if command is None:
            return
        self.messages += 1
        if command:
            with self.gate.lock:  # the gate's handle_bytes, unrolled (hot path)
                reply = self.gate.platform.handle_bytes(command, self.agent_id)
        else:
            reply = None
        if reply is not None:
            irq = area.write_response_bytes(reply)
        else:
            area.write_error()
            irq = bool(area.flags)
        if irq and self._p2a is not None:
            try:  # noqa: SIM105 - runs per message
                self._p2a.ring()
            except BlockingIOError:  # a full pipe: the interrupt is pending already
                pass

    # -- loop -------------------------------------------------------------------------
    def _run(self) -> None:
        poller, registered = select.poll(), object()  # sentinel: build on first pass
        listener_fd = -1
        while not self._stopping:
            client = self._client
            if registered is not client:  # rebuild only when the agent changed
                poller = select.poll()
                poller.register(self._stop_r, select.POLLIN)
                listener_fd = self._listener.fileno()
                poller.register(listener_fd, select.POLLIN)
                if client is not None:
                    poller.register(client.fileno(), select.POLLIN)
                registered = client
            if self.doorbell == "poll" and self._client is not None:
                self._spin(poller)
                continue
            for fd, _ev in poller.poll(1000):
                if fd == self._stop_r:
                    return
                if fd == listener_fd:
                    self._accept()
                elif (self._client is not None and fd == self._client.fileno()
                      and self._client_gone()):
                    self._drop_client()

    def _spin(self, poller: select.poll) -> None:
        """Poll-mode doorbell: spin on the sequence word, checking sockets when idle.
        `_last_seq` is the word as last served; `_accept` sets it back to 0 with the
        word itself (area.reset()), so a new agent's first bump is never mistaken for
        the old agent's last."""
        spin_until = time.monotonic() + _SPIN_S
        while not self._stopping and self._client is not None:
            seq = struct.unpack_from("<I", self._mm, A2P_OFFSET + OFF_RESERVED2)[0]
            if seq != self._last_seq:
                self._last_seq = seq
                self._serve_one()
                spin_until = time.monotonic() + _SPIN_S
                continue
            if time.monotonic() > spin_until:
                events = poller.poll(0)
                if events:
                    for fd, _ev in events:
                        if fd == self._stop_r:
                            self._stopping = True
                        elif fd == self._listener.fileno():
                            self._accept()
                        elif (self._client is not None and fd == self._client.fileno()
                              and self._client_gone()):
                            self._drop_client()
                    return
                time.sleep(50e-6)

    def _release(self) -> None:
        self._drop_client()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._created.remove()
        self.area = None  # type: ignore[assignment]
        with contextlib.suppress(BufferError, ValueError):
            self._mm.close()
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving, remove the control socket, release the channel memory."""
        was_started = self._thread is not None
        super().stop(timeout_s)
        if not was_started:
            self._cleanup()


class _RingServer:
    """The A2P doorbell handler of one connected agent, in its own thread: a blocking
    read of the doorbell, then the command. One system call per ring where poll() then
    read() would be two (about 1.3 us a round trip, docs/transports.md "Benchmarks").

    The agent holds the same doorbells (an eventfd is one open file on both sides), so
    nothing here may depend on what it does with them:
    - if it sets O_NONBLOCK on the A2P eventfd, the read says EAGAIN and the thread
      waits in poll() on the doorbell and a private wake pipe instead;
    - `stop()` never blocks: it sets the stop flag, writes the wake pipe, and rings
      the doorbell without blocking (O_NONBLOCK set first), again every 10 ms, for at
      most `STOP_WAIT_S`. An agent that steals those rings or holds the counter full
      leaves a thread that does not end: it is abandoned with a log line and closes
      the doorbells itself if it ever wakes (they stay open until then, so their
      numbers are never reused under it). The front-end goes on either way.
    It owns both doorbells and the wake pipe: whoever finishes last closes them.
    """

    STOP_WAIT_S = 0.5

    def __init__(self, front: ShmFrontEnd, a2p: _Doorbell, p2a: _Doorbell):
        self.front, self.a2p, self.p2a = front, a2p, p2a
        self.stopping = threading.Event()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._lock = threading.Lock()
        self._exited = self._abandoned = False
        self.thread = threading.Thread(target=self._loop, name=f"{front.name} doorbell",
                                       daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        take, serve_one, stopping = self.a2p.take, self.front._serve_one, self.stopping
        try:
            while True:
                try:
                    take()
                except BlockingIOError:  # the agent made the shared eventfd non-blocking
                    self._wait()
                    if stopping.is_set():
                        return
                    continue
                except OSError:
                    return
                if stopping.is_set():
                    return
                try:
                    serve_one()
                except Exception:  # the platform never raises; if it did, keep serving
                    log.exception("%s: unexpected error serving a command", self.front.name)
        finally:
            with self._lock:
                self._exited = True
                if self._abandoned:
                    self._close()

    def _wait(self) -> None:
        poller = select.poll()
        poller.register(self.a2p.read_fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        poller.poll()

    def _nudge(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        with contextlib.suppress(OSError):  # EAGAIN: full, so the reader wakes anyway
            os.set_blocking(self.a2p.write_fd, False)
            self.a2p.ring()

    def stop(self) -> None:
        """End the thread (see the class docstring); returns within STOP_WAIT_S."""
        self.stopping.set()
        deadline = time.monotonic() + self.STOP_WAIT_S
        while self.thread.is_alive() and time.monotonic() < deadline:
            self._nudge()
            self.thread.join(0.010)
        with self._lock:
            if self._exited:
                self._close()
                return
            self._abandoned = True
        log.warning("%s: the doorbell thread did not end within %.1f s (the agent is "
                    "reading or filling its A2P doorbell); abandoned", self.front.name,
                    self.STOP_WAIT_S)

    def _close(self) -> None:
        self.a2p.close()
        self.p2a.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
