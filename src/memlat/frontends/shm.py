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
        self._ring_thread: threading.Thread | None = None
        self._ring_stop = False

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
        if self._a2p is not None:
            self._ring_stop = False
            self._ring_thread = threading.Thread(target=self._ring_loop, args=(self._a2p,),
                                                 name=f"{self.name} doorbell", daemon=True)
            self._ring_thread.start()

    def _drop_client(self) -> None:
        if self._ring_thread is not None and self._a2p is not None:
            self._ring_stop = True
            self._a2p.ring()  # wake its blocking read; it sees _ring_stop and returns
            self._ring_thread.join()
            self._ring_thread = None
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.close()
        self._client = None
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
            self._p2a.ring()

    # -- loop -------------------------------------------------------------------------
    def _run(self) -> None:
        last_seq = struct.unpack_from("<I", self._mm, A2P_OFFSET + OFF_RESERVED2)[0]
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
                last_seq = self._spin(poller, last_seq)
                continue
            for fd, _ev in poller.poll(1000):
                if fd == self._stop_r:
                    return
                if fd == listener_fd:
                    self._accept()
                elif (self._client is not None and fd == self._client.fileno()
                      and self._client_gone()):
                    self._drop_client()

    def _ring_loop(self, a2p: _Doorbell) -> None:
        """The A2P doorbell handler, in its own thread while an agent is connected: a
        blocking read of the doorbell, then the command. One system call per ring where
        poll() then read() would be two (about 1.3 us a round trip, docs/transports.md
        "Benchmarks"). `_drop_client` ends it: it sets `_ring_stop`, rings the doorbell
        itself and joins the thread before closing anything."""
        take, serve_one = a2p.take, self._serve_one
        while True:
            try:
                take()
            except OSError:  # closed under us: _drop_client joins first, so never
                return
            if self._ring_stop:
                return
            try:
                serve_one()
            except Exception:  # the platform never raises; if it did, keep the channel
                log.exception("%s: unexpected error serving a command", self.name)

    def _spin(self, poller: select.poll, last_seq: int) -> int:
        """Poll-mode doorbell: spin on the sequence word, checking sockets when idle."""
        spin_until = time.monotonic() + _SPIN_S
        while not self._stopping and self._client is not None:
            seq = struct.unpack_from("<I", self._mm, A2P_OFFSET + OFF_RESERVED2)[0]
            if seq != last_seq:
                last_seq = seq
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
                    return last_seq
                time.sleep(50e-6)
        return last_seq

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
