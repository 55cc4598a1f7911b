"""The vhost-user back-end over a real Unix socket, driven by the session QEMU 10.0.2 sent
(tests/vm/golden): real fds (a memfd for guest RAM, eventfds for kick and call), the
captured payloads, and rings laid out as the guest's virtio-scmi driver laid them out."""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_vm import chains, frames, place_chain

from memlat.cpucp.boot import make_cpucp_platform
from memlat.errors import TransportError
from memlat.frontends import virtio
from memlat.frontends.vhost_user import DEVICE_FEATURES, PROTOCOL_FEATURES, VhostUserFrontEnd
from memlat.frontends.virtio import Request, VringAddr, decode_mem_table

GPA = 0x4000_0000
MEM = 0x2000_0000


class Qemu:
    """The front-end side: replays captured frames with fresh fds of the right kinds."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(str(path))
        self.ram_fd = os.memfd_create("guest-ram")
        os.ftruncate(self.ram_fd, MEM)  # sparse: no real memory until touched
        self.ram = mmap.mmap(self.ram_fd, MEM)
        self.kick: dict[int, int] = {}
        self.call: dict[int, int] = {}
        self.fds: list[int] = [self.ram_fd]

    def send(self, request: int, payload: bytes, fds: list[int], need_reply: bool) -> None:
        wire = virtio.encode_request(request, payload, need_reply=need_reply)
        socket.send_fds(self.sock, [wire], fds)

    def recv(self) -> tuple[int, int, bytes]:
        header = self.sock.recv(12, socket.MSG_WAITALL)
        request, flags, size = struct.unpack("<III", header)
        return request, flags, self.sock.recv(size, socket.MSG_WAITALL) if size else b""

    def fds_for(self, frame: dict) -> list[int]:
        """Fresh fds standing for the ones QEMU passed with this frame."""
        name = Request.label(frame["request"])
        if not frame["nfds"]:
            return []
        if name == "SET_MEM_TABLE":
            return [self.ram_fd]
        index = virtio.decode_u64(bytes.fromhex(frame["payload"]), name) & 0xFF
        fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.fds.append(fd)
        if name == "SET_VRING_KICK":
            self.kick[index] = fd
        elif name == "SET_VRING_CALL":
            self.call[index] = fd
        return [fd]

    def close(self) -> None:
        self.sock.close()
        self.ram.close()
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[VhostUserFrontEnd]:
    from memlat.config import load_config

    platform, _ = make_cpucp_platform(load_config(soc="x1e80100").hardware())
    front = VhostUserFrontEnd(platform, tmp_path / "scmi.sock").start()
    yield front
    front.stop()
    assert not (tmp_path / "scmi.sock").exists()


def _set_up(qemu: Qemu) -> dict[str, list[bytes]]:
    """Replay QEMU's session up to (not including) the first ring disable; returns the
    replies by request name."""
    replies: dict[str, list[bytes]] = {}
    for frame in frames():
        name = Request.label(frame["request"])
        payload = bytes.fromhex(frame["payload"])
        if name == "SET_VRING_ENABLE" and payload[4:8] == b"\0\0\0\0":
            break  # the guest's poweroff starts here
        need_reply = bool(frame["flags"] & virtio.FLAG_NEED_REPLY)
        qemu.send(frame["request"], payload, qemu.fds_for(frame), need_reply)
        if name.startswith("GET_") or need_reply:
            request, flags, body = qemu.recv()
            assert request == frame["request"]
            assert flags == virtio.VERSION | virtio.FLAG_REPLY
            replies.setdefault(name, []).append(body)
    # a barrier: requests are handled in order, so once this is answered the CALL fds
    # sent last without a reply are in place
    qemu.send(Request.GET_QUEUE_NUM, b"", [], False)
    assert qemu.recv()[0] == Request.GET_QUEUE_NUM
    return replies


def _wait(fd: int, timeout_s: float = 5.0) -> int:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    assert poller.poll(int(timeout_s * 1000)), "no call eventfd signal"
    return os.eventfd_read(fd)


def _ring_addr(kind: str, index: int) -> int:
    """A ring address of queue `index` in guest-physical terms, from the capture."""
    table = next(bytes.fromhex(f["payload"]) for f in frames()
                 if Request.label(f["request"]) == "SET_MEM_TABLE")
    (region,) = decode_mem_table(table, 1)
    addr = next(VringAddr.decode(bytes.fromhex(f["payload"])) for f in frames()
                if Request.label(f["request"]) == "SET_VRING_ADDR"
                and bytes.fromhex(f["payload"])[0] == index)
    return getattr(addr, kind) - region.userspace_addr + region.guest_phys_addr


def test_qemu_session_negotiates_and_serves_the_captured_chains(
        backend: VhostUserFrontEnd, tmp_path: Path) -> None:
    qemu = Qemu(tmp_path / "scmi.sock")
    try:
        replies = _set_up(qemu)
        assert [virtio.decode_u64(r, "f") for r in replies["GET_FEATURES"]] == \
            [DEVICE_FEATURES] * 2
        assert virtio.decode_u64(replies["GET_PROTOCOL_FEATURES"][0], "p") == \
            PROTOCOL_FEATURES
        assert virtio.decode_u64(replies["GET_QUEUE_NUM"][0], "q") == 2
        # REPLY_ACK for SET_MEM_TABLE and both SET_VRING_ENABLE: success (0)
        assert [virtio.decode_u64(r, "a") for r in replies["SET_MEM_TABLE"]] == [0]
        assert [virtio.decode_u64(r, "a") for r in replies["SET_VRING_ENABLE"]] == [0, 0]
        assert backend.ring_ready(0) and backend.ring_ready(1)
        # the captured discovery chains (base protocol: the CPUCP state does not matter)
        base = [c for c in chains()
                if (int.from_bytes(bytes.fromhex(c["request"])[:4], "little") >> 10)
                & 0xFF == 0x10]
        assert len(base) >= 7
        for n, record in enumerate(base, 1):
            place_chain(qemu.ram, GPA, record, avail_idx=n)
            os.eventfd_write(qemu.kick[0], 1)
            assert _wait(qemu.call[0]) >= 1
            used = record["used"] - GPA
            assert struct.unpack_from("<H", qemu.ram, used + 2)[0] == n
            head, length = struct.unpack_from("<II", qemu.ram, used + 4 + 8 * ((n - 1) % 256))
            reply = bytes.fromhex(record["reply"])
            assert (head, length) == (record["descriptors"][0]["index"], len(reply))
            out = struct.unpack_from("<Q", bytes.fromhex(record["descriptors"][1]["raw"]))[0]
            assert qemu.ram[out - GPA:out - GPA + len(reply)] == reply
        # GET_VRING_BASE stops the cmdq and reports how far the back-end consumed it
        qemu.send(Request.GET_VRING_BASE, struct.pack("<II", 0, 0), [], False)
        request, _, body = qemu.recv()
        assert request == Request.GET_VRING_BASE
        assert struct.unpack("<II", body) == (0, len(base))
        assert not backend.ring_ready(0)
    finally:
        qemu.close()


def test_eventq_notification_fills_a_posted_buffer(backend: VhostUserFrontEnd,
                                                   tmp_path: Path) -> None:
    qemu = Qemu(tmp_path / "scmi.sock")
    try:
        _set_up(qemu)
        assert backend.notify(b"\x00" * 8) is False  # no eventq buffer posted yet
        desc, avail, used = (_ring_addr(k, 1) for k in ("desc", "avail", "used"))
        buf = GPA + 0x100_0000
        struct.pack_into("<QIHH", qemu.ram, desc - GPA, buf, 128, virtio.DESC_F_WRITE, 0)
        struct.pack_into("<HHH", qemu.ram, avail - GPA, 0, 1, 0)
        assert backend.eventq_buffers() == 1
        # a notification: header type 3 (notification), protocol 0x80, then payload
        note = struct.pack("<I", (3 << 8) | (0x80 << 10) | 0x1) + b"\x2a\0\0\0"
        assert backend.notify(note) is True
        assert _wait(qemu.call[1]) == 1
        assert struct.unpack_from("<HII", qemu.ram, used - GPA + 2) == (1, 0, len(note))
        assert qemu.ram[buf - GPA:buf - GPA + len(note)] == note
        assert backend.eventq_buffers() == 0
    finally:
        qemu.close()


def test_refused_requests_change_nothing_and_are_nacked(backend: VhostUserFrontEnd,
                                                        tmp_path: Path) -> None:
    qemu = Qemu(tmp_path / "scmi.sock")
    try:
        qemu.send(Request.SET_PROTOCOL_FEATURES, virtio.encode_u64(PROTOCOL_FEATURES), [],
                  False)
        # acking a feature never offered (bit 1: VIRTIO_SCMI_F_SHARED_MEMORY)
        qemu.send(Request.SET_FEATURES, virtio.encode_u64(1 << 1), [], True)
        assert virtio.decode_u64(qemu.recv()[2], "ack") == 1
        # a queue virtio-scmi does not have
        qemu.send(Request.SET_VRING_NUM, struct.pack("<II", 5, 256), [], True)
        assert virtio.decode_u64(qemu.recv()[2], "ack") == 1
        # a memory table whose fd count does not match
        table = virtio.encode_mem_table([virtio.MemoryRegion(GPA, MEM, 0x7F00_0000_0000, 0)])
        qemu.send(Request.SET_MEM_TABLE, table, [], True)
        assert virtio.decode_u64(qemu.recv()[2], "ack") == 1
        assert not backend.ring_ready(0)
        # the session is still alive and answers
        qemu.send(Request.GET_QUEUE_NUM, b"", [], False)
        assert virtio.decode_u64(qemu.recv()[2], "q") == 2
    finally:
        qemu.close()


def test_a_new_front_end_after_disconnect_starts_a_fresh_session(
        backend: VhostUserFrontEnd, tmp_path: Path) -> None:
    for _ in range(2):
        qemu = Qemu(tmp_path / "scmi.sock")
        try:
            replies = _set_up(qemu)
            assert virtio.decode_u64(replies["GET_QUEUE_NUM"][0], "q") == 2
            assert backend.ring_ready(0)
        finally:
            qemu.close()
        for _ in range(100):  # the back-end notices the close on its next poll
            if not backend.connected:
                break
            select.select([], [], [], 0.02)
        assert not backend.connected
    assert backend.connections == 2


def test_unusable_socket_path_is_a_clear_error(tmp_path: Path) -> None:
    platform, _ = make_cpucp_platform()
    with pytest.raises(TransportError, match=r"missing/scmi.sock: cannot listen"):
        VhostUserFrontEnd(platform, tmp_path / "missing" / "scmi.sock")
