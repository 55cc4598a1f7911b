"""The sans-I/O vhost-user and split-virtqueue codecs against frames captured from QEMU
10.0.2 driving a Linux 6.12 guest (tests/vm/golden)."""

from __future__ import annotations

import struct

import pytest
from helpers_vm import chains, frames, place_chain

from memlat.config import load_config
from memlat.cpucp.boot import make_cpucp_platform
from memlat.errors import DecodeError
from memlat.frontends import virtio
from memlat.frontends.virtio import (
    FlatMemory,
    Header,
    Request,
    SplitQueue,
    VringAddr,
    VringState,
    decode_mem_table,
    scmi_serve_chain,
)
from memlat.vm.run import reference_probe

GPA = 0x4000_0000
MEM = 0x2000_0000  # -m 512
REFERENCE = reference_probe("x1e80100")


def test_every_captured_frame_round_trips_through_the_header_codec() -> None:
    seen = []
    for f in frames():
        wire = virtio.encode_request(f["request"], bytes.fromhex(f["payload"]),
                                     need_reply=bool(f["flags"] & virtio.FLAG_NEED_REPLY))
        header = Header.decode(wire)
        assert (header.request, header.flags, header.size) == (
            f["request"], f["flags"], len(f["payload"]) // 2)
        seen.append(Request.label(header.request))
    # QEMU's set-up order for vhost-user-scmi (hw/virtio/vhost-user.c)
    assert seen[:6] == ["GET_FEATURES", "GET_PROTOCOL_FEATURES", "SET_PROTOCOL_FEATURES",
                        "GET_QUEUE_NUM", "SET_OWNER", "GET_FEATURES"]
    assert "SET_MEM_TABLE" in seen and seen.count("GET_VRING_BASE") == 2


def test_captured_set_up_payloads_decode_to_the_guest_qemu_built() -> None:
    by_name: dict[str, list[bytes]] = {}
    for f in frames():
        by_name.setdefault(Request.label(f["request"]), []).append(bytes.fromhex(f["payload"]))
    (table,) = by_name["SET_MEM_TABLE"]
    (region,) = decode_mem_table(table, nfds=1)
    assert (region.guest_phys_addr, region.memory_size) == (GPA, MEM)  # virt RAM, -m 512
    # the back-end offered VERSION_1 | P2A_CHANNELS | PROTOCOL_FEATURES; QEMU acked all
    acked = virtio.decode_u64(by_name["SET_FEATURES"][0], "SET_FEATURES")
    assert acked == (virtio.VIRTIO_F_VERSION_1 | virtio.VIRTIO_SCMI_F_P2A_CHANNELS
                     | virtio.F_PROTOCOL_FEATURES)
    # MQ | REPLY_ACK
    assert virtio.decode_u64(by_name["SET_PROTOCOL_FEATURES"][0], "x") == 0b1001
    nums = [VringState.decode(p, "SET_VRING_NUM") for p in by_name["SET_VRING_NUM"]]
    assert [(s.index, s.num) for s in nums] == [(0, 256), (1, 256)]
    addrs = [VringAddr.decode(p) for p in by_name["SET_VRING_ADDR"]]
    for a in addrs:
        # desc, avail and used lie in guest RAM, in QEMU's address space (uva)
        for uva in (a.desc, a.avail, a.used):
            assert region.userspace_addr <= uva < region.userspace_addr + MEM
        assert a.encode() == by_name["SET_VRING_ADDR"][a.index]
    kicks = [virtio.decode_u64(p, "k") for p in by_name["SET_VRING_KICK"]]
    assert kicks == [0, 1]  # ring index, fd passed (bit 8 clear)


def test_header_errors_name_the_byte() -> None:
    with pytest.raises(DecodeError, match="version 2 at byte 4"):
        Header.decode(struct.pack("<III", 1, 2, 0))
    with pytest.raises(DecodeError, match="at byte 8 exceeds"):
        Header.decode(struct.pack("<III", 5, 1, 1 << 20))
    with pytest.raises(DecodeError, match="need 12"):
        Header.decode(b"\1\0\0")
    with pytest.raises(DecodeError, match="2 regions but 1 fds"):
        decode_mem_table(struct.pack("<II", 2, 0) + bytes(64), nfds=1)


@pytest.mark.parametrize("record", chains(), ids=lambda r: r["request"][:8])
def test_captured_chain_is_served_like_the_live_back_end(record: dict) -> None:
    """Rebuild the driver's ring from the capture, serve it with a fresh emulated CPUCP,
    and get the bytes the back-end wrote while QEMU ran."""
    # sparse window of guest RAM that holds the ring and both buffers
    addrs = [record["desc_table"], record["avail"], record["used"]]
    addrs += [struct.unpack_from("<Q", bytes.fromhex(d["raw"]))[0]
              for d in record["descriptors"]]
    base = min(addrs) & ~0xFFF
    memory = FlatMemory(base, bytearray(max(addrs) - base + 8192))
    place_chain(memory.buf, base, record, avail_idx=1)
    queue = SplitQueue(record["num"], record["desc_table"], record["avail"], record["used"],
                       memory)
    platform, _ = make_cpucp_platform(load_config(soc="x1e80100").hardware())
    # bring the CPUCP to the state it had: the probe commands sent before this one
    request = bytes.fromhex(record["request"])
    earlier = [c for c, _ in REFERENCE]
    for command in earlier[:earlier.index(request)] if request in earlier else []:
        platform.handle_bytes(command)
    served = list(queue.drain(lambda chain: scmi_serve_chain(chain, platform.handle_bytes)))
    assert served == [record["descriptors"][0]["index"]]
    assert queue.used_idx() == 1 and queue.pending() == 0
    head, length = struct.unpack_from("<II", memory.gpa(record["used"] + 4, 8))
    reply = bytes.fromhex(record["reply"])
    assert (head, length) == (record["descriptors"][0]["index"], len(reply))
    writable = [d for d in record["descriptors"]
                if struct.unpack_from("<QIHH", bytes.fromhex(d["raw"]))[2] & 2]
    addr, cap, _, _ = struct.unpack_from("<QIHH", bytes.fromhex(writable[0]["raw"]))
    assert cap == record["capacity"]
    assert bytes(memory.gpa(addr, len(reply))) == reply


def test_queue_refuses_malformed_chains() -> None:
    memory = FlatMemory(0, bytearray(0x4000))
    q = SplitQueue(4, 0x0, 0x100, 0x200, memory)
    desc = memory.gpa(0, 64)
    # a loop: 0 -> 1 -> 0
    desc[0:16] = struct.pack("<QIHH", 0x1000, 4, virtio.DESC_F_NEXT, 1)
    desc[16:32] = struct.pack("<QIHH", 0x1100, 4, virtio.DESC_F_NEXT, 0)
    memory.gpa(0x100, 6)[:] = struct.pack("<HHH", 0, 1, 0)
    with pytest.raises(DecodeError, match="loops"):
        q.pop()
    # readable after writable
    desc[0:16] = struct.pack("<QIHH", 0x1000, 4, virtio.DESC_F_NEXT | virtio.DESC_F_WRITE, 1)
    desc[16:32] = struct.pack("<QIHH", 0x1100, 4, 0, 0)
    memory.gpa(0x100, 4)[:] = struct.pack("<HH", 0, 2)
    with pytest.raises(DecodeError, match="readable after a writable"):
        q.pop()
    # a buffer outside guest memory
    desc[0:16] = struct.pack("<QIHH", 0x10_0000, 4, 0, 0)
    memory.gpa(0x100, 4)[:] = struct.pack("<HH", 0, 3)
    with pytest.raises(DecodeError, match="outside"):
        q.pop()
    with pytest.raises(DecodeError, match="power of two"):
        SplitQueue(3, 0, 0, 0, memory)


def test_reply_larger_than_the_buffer_is_truncated_to_its_capacity() -> None:
    memory = FlatMemory(0, bytearray(0x3000))
    q = SplitQueue(2, 0x0, 0x100, 0x200, memory)
    d = memory.gpa(0, 32)
    d[0:16] = struct.pack("<QIHH", 0x1000, 4, virtio.DESC_F_NEXT, 1)
    d[16:32] = struct.pack("<QIHH", 0x2000, 8, virtio.DESC_F_WRITE, 0)
    memory.gpa(0x1000, 4)[:] = struct.pack("<I", 0x10 << 10)  # BASE PROTOCOL_VERSION
    memory.gpa(0x100, 6)[:] = struct.pack("<HHH", 0, 1, 0)
    platform, _ = make_cpucp_platform()
    assert list(q.drain(lambda c: scmi_serve_chain(c, platform.handle_bytes))) == [0]
    assert struct.unpack_from("<II", memory.gpa(0x204, 8)) == (0, 8)  # 12-byte reply, cap 8
    assert bytes(memory.gpa(0x2000, 8)) == bytes.fromhex("0040000000000000")
