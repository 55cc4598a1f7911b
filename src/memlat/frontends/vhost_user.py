"""Platform side for QEMU's `vhost-user-scmi` device: a vhost-user back-end on a Unix
socket serving the virtio-scmi queues from the emulated platform.

`VhostUserFrontEnd(platform, "/tmp/scmi.sock")` listens (mode 0600); QEMU connects with
`-chardev socket,id=vscmi,path=/tmp/scmi.sock -device vhost-user-scmi-pci,chardev=vscmi`.
The back-end then:

- answers the vhost-user set-up (features, protocol features, owner, memory table,
  vring num/addr/base/kick/call/err/enable, GET_VRING_BASE on stop), mapping every
  guest-memory region from the fd QEMU passes (MAP_SHARED: the guest needs a memfd or
  file memory backend with share=on);
- on each kick of the cmdq (queue 0) pops every available descriptor chain, hands the
  request (SCMI header + parameters) to the platform and writes the reply (header +
  status + return values) into the chain's device-writable buffer, then signals the call
  eventfd unless the driver suppressed interrupts;
- keeps the eventq (queue 1, VIRTIO_SCMI_F_P2A_CHANNELS) buffers the driver posts, and
  `notify(message)` fills one with a platform-to-agent message.

Codecs are in `memlat.frontends.virtio` (sans-I/O); the message layouts and their sources
are in docs/vm.md. One front-end serves one QEMU at a time; when it disconnects (guest
powered off) the back-end forgets that session and waits for the next.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from memlat.errors import DecodeError, TransportError
from memlat.frontends import virtio
from memlat.frontends.base import PlatformGate, PollingFrontEnd, as_gate, listen_owner_only
from memlat.frontends.virtio import (
    DESC_SIZE,
    Header,
    MemoryRegion,
    ProtocolFeature,
    Request,
    SplitQueue,
    VringAddr,
    VringState,
)
from memlat.scmi.platform import Platform

log = logging.getLogger(__name__)

#: virtio features the back-end offers: VERSION_1, P2A channels (eventq), and
#: vhost-user protocol features. No EVENT_IDX, no INDIRECT_DESC: the queue code is plain.
DEVICE_FEATURES = (virtio.VIRTIO_F_VERSION_1 | virtio.VIRTIO_SCMI_F_P2A_CHANNELS
                   | virtio.F_PROTOCOL_FEATURES)
PROTOCOL_FEATURES = (1 << ProtocolFeature.MQ) | (1 << ProtocolFeature.REPLY_ACK)
NUM_QUEUES = 2
_MAX_FDS = virtio.VHOST_USER_MAX_RAM_SLOTS
_TAKES_FDS = frozenset({Request.SET_MEM_TABLE, Request.SET_VRING_KICK, Request.SET_VRING_CALL,
                        Request.SET_VRING_ERR})


class GuestMemory:
    """The guest-memory regions of one SET_MEM_TABLE, mmap'ed from QEMU's fds."""

    def __init__(self, regions: list[MemoryRegion], fds: list[int]):
        self.regions = regions
        self._maps: list[mmap.mmap] = []
        try:
            for region, fd in zip(regions, fds, strict=True):
                self._maps.append(mmap.mmap(fd, region.mmap_offset + region.memory_size,
                                            flags=mmap.MAP_SHARED,
                                            prot=mmap.PROT_READ | mmap.PROT_WRITE))
        except (OSError, ValueError) as exc:
            self.close()
            raise TransportError(f"vhost-user SET_MEM_TABLE: cannot map guest memory "
                                 f"({exc}); does QEMU use a shared memory backend "
                                 "(memory-backend-memfd,share=on)?") from exc

    def gpa(self, addr: int, length: int) -> memoryview:
        """`length` bytes at guest-physical `addr`."""
        for region, m in zip(self.regions, self._maps, strict=True):
            off = addr - region.guest_phys_addr
            if off >= 0 and off + length <= region.memory_size:
                start = region.mmap_offset + off
                return memoryview(m)[start:start + length]
        raise DecodeError(f"guest address {addr:#x}+{length} is in no mapped region")

    def uva_to_gpa(self, uva: int) -> int:
        """A front-end (QEMU) virtual address, as in SET_VRING_ADDR, to guest-physical."""
        for region in self.regions:
            off = uva - region.userspace_addr
            if 0 <= off < region.memory_size:
                return region.guest_phys_addr + off
        raise DecodeError(f"front-end address {uva:#x} is in no mapped region")

    def close(self) -> None:
        """Unmap (a view still exported keeps its map alive until it is dropped)."""
        for m in self._maps:
            with contextlib.suppress(BufferError):
                m.close()
        self._maps = []


@dataclass
class Vring:
    """What vhost-user told us about one queue."""

    num: int = 0
    addr: VringAddr | None = None
    base: int = 0
    kick: int | None = None
    call: int | None = None
    err: int | None = None
    enabled: bool = False
    queue: SplitQueue | None = None
    served: int = 0

    def close_fds(self) -> None:
        for name in ("kick", "call", "err"):
            fd = getattr(self, name)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, None)


@dataclass
class Session:
    """The negotiated state of one connected front-end."""

    features: int = 0
    protocol_features: int = 0
    owner: bool = False
    memory: GuestMemory | None = None
    vrings: list[Vring] = field(default_factory=lambda: [Vring() for _ in range(NUM_QUEUES)])

    def close(self) -> None:
        for ring in self.vrings:
            ring.queue = None
            ring.close_fds()
        if self.memory is not None:
            self.memory.close()
            self.memory = None


class VhostUserFrontEnd(PollingFrontEnd):
    """A vhost-user-scmi back-end listening at `path`.

    capture: a JSON-lines file recording every vhost-user message received (request,
    flags, payload hex, fd count) and every cmdq chain served (descriptors, request and
    reply bytes); tests/vm/golden holds one such capture from QEMU.
    """

    def __init__(self, platform: Platform | PlatformGate, path: str | os.PathLike[str], *,
                 agent_id: int = 1, capture: str | os.PathLike[str] | None = None):
        if sys.byteorder != "little":
            raise TransportError("vhost-user back-end: only little-endian hosts are supported")
        super().__init__()
        self.gate = as_gate(platform)
        self.path = os.fspath(path)
        self.name = f"vhost-user:{self.path}"
        self.agent_id = agent_id
        self.messages = 0
        self.connections = 0
        try:
            self._listener = listen_owner_only(self.path, 1)
        except OSError as exc:
            os.close(self._stop_r)
            os.close(self._stop_w)
            raise TransportError(f"vhost-user socket {self.path}: cannot listen "
                                 f"({exc.strerror})") from exc
        self._conn: socket.socket | None = None
        self._session = Session()
        self._lock = threading.Lock()
        self._capture: TextIO | None = open(capture, "w") if capture else None  # noqa: SIM115
        self._t0 = time.monotonic()

    # -- public ----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """A front-end (QEMU) is connected."""
        return self._conn is not None

    def eventq_buffers(self) -> int:
        """Buffers the driver has posted on the eventq and the back-end has not used."""
        with self._lock:
            ring = self._session.vrings[virtio.SCMI_EVENTQ]
            return ring.queue.pending() if ring.queue is not None else 0

    def ring_ready(self, index: int) -> bool:
        """Queue `index` is started (kick fd, addresses) and enabled."""
        with self._lock:
            ring = self._session.vrings[index]
            return ring.queue is not None and ring.enabled

    def notify(self, message: bytes) -> bool:
        """Send a platform-to-agent message (notification or delayed response: header +
        payload) on the eventq; False when the driver has no buffer posted."""
        with self._lock:
            ring = self._session.vrings[virtio.SCMI_EVENTQ]
            if ring.queue is None or not ring.enabled:
                return False
            chain = ring.queue.pop()
            if chain is None:
                return False
            ring.queue.push(chain.head, chain.write_all(message))
            ring.served += 1
            self._signal(ring)
            return True

    # -- loop ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping:
            poller = select.poll()
            poller.register(self._stop_r, select.POLLIN)
            if self._conn is None:
                poller.register(self._listener.fileno(), select.POLLIN)
            else:
                poller.register(self._conn.fileno(), select.POLLIN)
                for ring in self._session.vrings:
                    if ring.kick is not None:
                        poller.register(ring.kick, select.POLLIN)
            for fd, _ev in poller.poll(1000):
                if fd == self._stop_r:
                    return
                if self._conn is None and fd == self._listener.fileno():
                    self._accept()
                elif self._conn is not None and fd == self._conn.fileno():
                    self._read_message()
                else:
                    self._kicked(fd)
                if self._stopping:
                    return

    def _accept(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(True)
        conn.settimeout(5.0)
        self._conn = conn
        self.connections += 1
        self._session = Session()
        log.info("%s: front-end connected", self.name)

    def _disconnect(self, why: str) -> None:
        log.info("%s: front-end disconnected (%s)", self.name, why)
        with self._lock:
            self._session.close()
            self._session = Session()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _recv_exact(self, n: int) -> bytes:
        assert self._conn is not None
        data = b""
        while len(data) < n:
            chunk = self._conn.recv(n - len(data))
            if not chunk:
                raise ConnectionResetError("peer closed mid-message")
            data += chunk
        return data

    def _read_message(self) -> None:
        assert self._conn is not None
        try:
            raw, fds, _flags, _addr = socket.recv_fds(self._conn, virtio.HEADER_SIZE, _MAX_FDS)
            if not raw:
                for fd in fds:
                    os.close(fd)
                self._disconnect("closed")
                return
            if len(raw) < virtio.HEADER_SIZE:
                raw += self._recv_exact(virtio.HEADER_SIZE - len(raw))
            header = Header.decode(raw)
            payload = self._recv_exact(header.size) if header.size else b""
        except (OSError, DecodeError) as exc:
            self._disconnect(str(exc))
            return
        self.messages += 1
        self._record({"t": round(time.monotonic() - self._t0, 6), "request": header.request,
                      "name": Request.label(header.request), "flags": header.flags,
                      "payload": payload.hex(), "nfds": len(fds)})
        if fds and header.request not in _TAKES_FDS:
            log.warning("%s: %s carried %d unexpected fds; closed", self.name,
                        Request.label(header.request), len(fds))
            for fd in fds:
                os.close(fd)
            fds = []
        try:
            reply = self._handle(header, payload, fds)
            ok = True
        except (DecodeError, TransportError) as exc:
            log.warning("%s: %s refused: %s", self.name, Request.label(header.request), exc)
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            reply, ok = None, False
        try:
            if reply is not None:
                self._conn.sendall(virtio.encode_reply(header.request, reply))
            elif header.need_reply and self._acks():
                self._conn.sendall(virtio.encode_reply(header.request,
                                                       virtio.encode_u64(0 if ok else 1)))
        except OSError as exc:
            self._disconnect(str(exc))

    def _acks(self) -> bool:
        return bool(self._session.protocol_features & (1 << ProtocolFeature.REPLY_ACK))

    # -- requests --------------------------------------------------------------------
    def _handle(self, header: Header, payload: bytes, fds: list[int]) -> bytes | None:
        """Apply one request; returns the reply payload for requests that have one."""
        req, s = header.request, self._session
        name = Request.label(req)
        if req == Request.GET_FEATURES:
            return virtio.encode_u64(DEVICE_FEATURES)
        if req == Request.SET_FEATURES:
            s.features = virtio.decode_u64(payload, name)
            if s.features & ~DEVICE_FEATURES:
                raise DecodeError(f"SET_FEATURES {s.features:#x} acks bits never offered "
                                  f"({s.features & ~DEVICE_FEATURES:#x})")
            return None
        if req == Request.GET_PROTOCOL_FEATURES:
            return virtio.encode_u64(PROTOCOL_FEATURES)
        if req == Request.SET_PROTOCOL_FEATURES:
            s.protocol_features = virtio.decode_u64(payload, name) & PROTOCOL_FEATURES
            return None
        if req == Request.GET_QUEUE_NUM:
            return virtio.encode_u64(NUM_QUEUES)
        if req == Request.SET_OWNER:
            s.owner = True
            return None
        if req in (Request.RESET_OWNER, Request.RESET_DEVICE):
            with self._lock:
                s.close()
                self._session = Session(features=s.features,
                                        protocol_features=s.protocol_features, owner=False)
            return None
        if req == Request.SET_MEM_TABLE:
            regions = virtio.decode_mem_table(payload, len(fds))
            memory = GuestMemory(regions, fds)
            for fd in fds:
                os.close(fd)
            with self._lock:
                if s.memory is not None:
                    s.memory.close()
                s.memory = memory
                for ring in s.vrings:  # ring addresses are re-translated in the new map
                    self._maybe_start(ring)
            return None
        if req == Request.GET_VRING_BASE:
            state = VringState.decode(payload, name)
            ring = self._ring(state.index)
            with self._lock:
                base = ring.queue.last_avail if ring.queue is not None else ring.base
                ring.queue = None
                ring.base = base
                if ring.kick is not None:
                    os.close(ring.kick)
                    ring.kick = None
            return VringState(state.index, base).encode()
        if req in (Request.SET_VRING_NUM, Request.SET_VRING_BASE, Request.SET_VRING_ENABLE):
            state = VringState.decode(payload, name)
            ring = self._ring(state.index)
            with self._lock:
                if req == Request.SET_VRING_NUM:
                    ring.num = state.num
                elif req == Request.SET_VRING_BASE:
                    ring.base = state.num
                else:
                    ring.enabled = bool(state.num)
            if ring.enabled and ring.queue is not None:
                self._serve_ring(state.index)
            return None
        if req == Request.SET_VRING_ADDR:
            addr = VringAddr.decode(payload)
            ring = self._ring(addr.index)
            with self._lock:
                ring.addr = addr
            return None
        if req in (Request.SET_VRING_KICK, Request.SET_VRING_CALL, Request.SET_VRING_ERR):
            value = virtio.decode_u64(payload, name)
            index = value & virtio.VRING_IDX_MASK
            nofd = bool(value & virtio.VRING_NOFD_MASK)
            if nofd and fds:
                raise DecodeError(f"{name}: no-fd flag set but {len(fds)} fds passed")
            if not nofd and len(fds) != 1:
                raise DecodeError(f"{name}: expected one fd, got {len(fds)}")
            ring = self._ring(index)
            attr = {Request.SET_VRING_KICK: "kick", Request.SET_VRING_CALL: "call",
                    Request.SET_VRING_ERR: "err"}[Request(req)]
            with self._lock:
                old = getattr(ring, attr)
                if old is not None:
                    os.close(old)
                setattr(ring, attr, None if nofd else fds[0])
                if req == Request.SET_VRING_KICK:
                    if nofd:
                        raise DecodeError("SET_VRING_KICK without fd (polling) is not "
                                          "supported")
                    # vhost-user.rst "Ring states": without protocol features a ring is
                    # enabled as soon as it starts
                    if not s.features & virtio.F_PROTOCOL_FEATURES:
                        ring.enabled = True
                    self._maybe_start(ring)
            if req == Request.SET_VRING_KICK:
                self._serve_ring(index)
            return None
        if req in (Request.SET_VRING_ENDIAN, Request.SET_LOG_BASE, Request.SET_LOG_FD,
                   Request.SET_BACKEND_REQ_FD, Request.GET_CONFIG, Request.SET_CONFIG):
            raise DecodeError(f"{name} belongs to a feature this back-end does not offer")
        raise DecodeError(f"unknown request {req}")

    def _ring(self, index: int) -> Vring:
        if not 0 <= index < NUM_QUEUES:
            raise DecodeError(f"vring index {index}: virtio-scmi has {NUM_QUEUES} queues")
        return self._session.vrings[index]

    def _maybe_start(self, ring: Vring) -> None:
        """Build the queue once memory, size, addresses and a kick fd are known."""
        mem = self._session.memory
        if mem is None or ring.addr is None or ring.kick is None or not ring.num:
            return
        a = ring.addr
        last = ring.queue.last_avail if ring.queue is not None else ring.base
        ring.queue = SplitQueue(ring.num, mem.uva_to_gpa(a.desc), mem.uva_to_gpa(a.avail),
                                mem.uva_to_gpa(a.used), mem, last_avail=last)

    # -- queues ----------------------------------------------------------------------
    def _kicked(self, fd: int) -> None:
        for index, ring in enumerate(self._session.vrings):
            if ring.kick == fd:
                with contextlib.suppress(BlockingIOError, OSError):
                    os.read(fd, 8)
                self._serve_ring(index)
                return

    def _serve_ring(self, index: int) -> None:
        if index != virtio.SCMI_CMDQ:
            return  # eventq buffers wait for notify()
        with self._lock:
            ring = self._session.vrings[index]
            queue = ring.queue
            if queue is None or not ring.enabled:
                return
            served = 0
            try:
                while (chain := queue.pop()) is not None:
                    request = chain.read_all()
                    reply = self.gate.handle_bytes(request, self.agent_id)
                    written = chain.write_all(reply) if reply is not None else 0
                    if self._capture is not None:
                        self._record_chain(queue, chain.head, request, reply, chain.capacity)
                    queue.push(chain.head, written)
                    served += 1
            except DecodeError as exc:
                log.error("%s: cmdq: %s", self.name, exc)
            ring.served += served
            if served:
                self._signal(ring)

    def _signal(self, ring: Vring) -> None:
        if ring.call is not None and ring.queue is not None and ring.queue.needs_interrupt():
            with contextlib.suppress(OSError):
                os.eventfd_write(ring.call, 1)

    # -- capture ---------------------------------------------------------------------
    def _record(self, item: dict[str, Any]) -> None:
        if self._capture is not None:
            self._capture.write(json.dumps(item) + "\n")
            self._capture.flush()

    def _record_chain(self, queue: SplitQueue, head: int, request: bytes,
                      reply: bytes | None, capacity: int) -> None:
        descs = []
        index = head
        for _ in range(queue.num):
            raw = bytes(queue.memory.gpa(queue.desc + index * DESC_SIZE, DESC_SIZE))
            d = queue.descriptor(index)
            descs.append({"index": index, "raw": raw.hex()})
            if not d.flags & virtio.DESC_F_NEXT:
                break
            index = d.next
        self._record({"t": round(time.monotonic() - self._t0, 6), "chain": head,
                      "num": queue.num, "desc_table": queue.desc, "avail": queue.avail,
                      "used": queue.used, "avail_slot": (queue.last_avail - 1) % queue.num,
                      "descriptors": descs, "request": request.hex(),
                      "reply": reply.hex() if reply is not None else None,
                      "capacity": capacity})

    # -- teardown --------------------------------------------------------------------
    def _release(self) -> None:
        with self._lock:
            self._session.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._listener.close()
        with contextlib.suppress(FileNotFoundError):
            Path(self.path).unlink()
        if self._capture is not None:
            self._capture.close()
            self._capture = None

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving, drop the session, remove the socket file."""
        was_started = self._thread is not None
        super().stop(timeout_s)
        if not was_started:
            self._cleanup()
