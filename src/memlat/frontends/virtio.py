"""Sans-I/O codecs for the vhost-user protocol and virtio split virtqueues.

No sockets, no mmap here: `memlat.frontends.vhost_user` does the I/O and hands this
module bytes and buffers. Everything is little-endian (vhost-user messages travel in the
host's byte order, and virtio 1.x rings are little-endian; memlat only runs on
little-endian hosts, which `sys.byteorder` is checked against in vhost_user).

Sources, quoted where used:
- vhost-user: QEMU's docs/interop/vhost-user.rst ("Vhost-user Protocol"): the 12-byte
  header `u32 request, u32 flags, u32 size`, flags bits 0-1 = version 0x1, bit 2 =
  reply, bit 3 = need_reply; payload layouts (u64, vring state, vring address, memory
  regions description); the request numbers below.
- virtio 1.2 (OASIS), §2.7 "Split Virtqueues": descriptor `le64 addr, le32 len, le16
  flags, le16 next` (16 bytes; flags NEXT=1, WRITE=2, INDIRECT=4), available ring `le16
  flags, le16 idx, le16 ring[num], le16 used_event`, used ring `le16 flags, le16 idx,
  {le32 id, le32 len}[num], le16 avail_event`; VRING_AVAIL_F_NO_INTERRUPT = 1.
- virtio 1.2 §5.17 "SCMI Device": cmdq (0) and eventq (1); a cmdq request is one
  device-readable buffer `le32 hdr, u8 params[]` followed by one device-writable buffer
  for `le32 hdr, le32 status, u8 ret_values[]`; an eventq buffer is device-writable and
  receives `le32 hdr, u8 payload[]` (notifications, delayed responses).
  Feature VIRTIO_SCMI_F_P2A_CHANNELS = bit 0 (eventq in use).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

from memlat.errors import DecodeError

# ---- vhost-user messages ----------------------------------------------------------------

HEADER = struct.Struct("<III")
HEADER_SIZE = HEADER.size  # 12
VERSION = 0x1
FLAG_VERSION_MASK = 0x3
FLAG_REPLY = 0x4
FLAG_NEED_REPLY = 0x8
#: payloads above this are refused (the spec's largest, the memory table, is 8 + 8*32*4)
MAX_PAYLOAD = 4096
#: SET_VRING_KICK/CALL/ERR u64: bits 0-7 the ring index, bit 8 "no fd passed"
VRING_IDX_MASK = 0xFF
VRING_NOFD_MASK = 0x100
#: VHOST_USER_F_PROTOCOL_FEATURES, offered in GET_FEATURES
F_PROTOCOL_FEATURES = 1 << 30
VIRTIO_F_VERSION_1 = 1 << 32
VIRTIO_SCMI_F_P2A_CHANNELS = 1 << 0
VHOST_USER_MAX_RAM_SLOTS = 32


class Request(IntEnum):
    """Front-end to back-end request numbers (vhost-user.rst, "Front-end message types")."""

    GET_FEATURES = 1
    SET_FEATURES = 2
    SET_OWNER = 3
    RESET_OWNER = 4
    SET_MEM_TABLE = 5
    SET_LOG_BASE = 6
    SET_LOG_FD = 7
    SET_VRING_NUM = 8
    SET_VRING_ADDR = 9
    SET_VRING_BASE = 10
    GET_VRING_BASE = 11
    SET_VRING_KICK = 12
    SET_VRING_CALL = 13
    SET_VRING_ERR = 14
    GET_PROTOCOL_FEATURES = 15
    SET_PROTOCOL_FEATURES = 16
    GET_QUEUE_NUM = 17
    SET_VRING_ENABLE = 18
    SEND_RARP = 19
    NET_SET_MTU = 20
    SET_BACKEND_REQ_FD = 21
    IOTLB_MSG = 22
    SET_VRING_ENDIAN = 23
    GET_CONFIG = 24
    SET_CONFIG = 25
    CREATE_CRYPTO_SESSION = 26
    CLOSE_CRYPTO_SESSION = 27
    POSTCOPY_ADVISE = 28
    POSTCOPY_LISTEN = 29
    POSTCOPY_END = 30
    GET_INFLIGHT_FD = 31
    SET_INFLIGHT_FD = 32
    GPU_SET_SOCKET = 33
    RESET_DEVICE = 34
    VRING_KICK = 35
    GET_MAX_MEM_SLOTS = 36
    ADD_MEM_REG = 37
    REM_MEM_REG = 38
    SET_STATUS = 39
    GET_STATUS = 40

    @classmethod
    def label(cls, value: int) -> str:
        """`SET_MEM_TABLE`, or `REQUEST_99` for a number the spec does not name."""
        try:
            return cls(value).name
        except ValueError:
            return f"REQUEST_{value}"


class ProtocolFeature(IntEnum):
    """Bits of GET/SET_PROTOCOL_FEATURES (vhost-user.rst, "Protocol features")."""

    MQ = 0
    LOG_SHMFD = 1
    RARP = 2
    REPLY_ACK = 3
    MTU = 4
    BACKEND_REQ = 5
    CROSS_ENDIAN = 6
    CRYPTO_SESSION = 7
    PAGEFAULT = 8
    CONFIG = 9
    BACKEND_SEND_FD = 10
    HOST_NOTIFIER = 11
    INFLIGHT_SHMFD = 12
    RESET_DEVICE = 13
    INBAND_NOTIFICATIONS = 14
    CONFIGURE_MEM_SLOTS = 15
    STATUS = 16


@dataclass(frozen=True, slots=True)
class Header:
    """The 12-byte vhost-user header."""

    request: int
    flags: int
    size: int

    @classmethod
    def decode(cls, data: bytes) -> Header:
        """Parse 12 bytes; DecodeError on a short header, wrong version or huge size."""
        if len(data) < HEADER_SIZE:
            raise DecodeError(f"vhost-user header: {len(data)} bytes, need {HEADER_SIZE}")
        request, flags, size = HEADER.unpack_from(data)
        if flags & FLAG_VERSION_MASK != VERSION:
            raise DecodeError(f"vhost-user header: version {flags & FLAG_VERSION_MASK} at "
                              f"byte 4 (flags {flags:#x}), only version 1 exists")
        if size > MAX_PAYLOAD:
            raise DecodeError(f"vhost-user {Request.label(request)}: payload size {size} "
                              f"at byte 8 exceeds {MAX_PAYLOAD}")
        return cls(request, flags, size)

    @property
    def need_reply(self) -> bool:
        """The front-end asked for a REPLY_ACK (flags bit 3)."""
        return bool(self.flags & FLAG_NEED_REPLY)


def encode_reply(request: int, payload: bytes) -> bytes:
    """A back-end reply: header with version 1 and the reply flag, then `payload`."""
    return HEADER.pack(request, VERSION | FLAG_REPLY, len(payload)) + payload


def encode_request(request: int, payload: bytes = b"", *, need_reply: bool = False) -> bytes:
    """A front-end message (what QEMU sends); used by tests and captures."""
    flags = VERSION | (FLAG_NEED_REPLY if need_reply else 0)
    return HEADER.pack(request, flags, len(payload)) + payload


def encode_u64(value: int) -> bytes:
    """A u64 payload (features, ring index + flags, REPLY_ACK status)."""
    return struct.pack("<Q", value)


def decode_u64(payload: bytes, what: str) -> int:
    """A u64 payload; DecodeError naming `what` if it is not 8 bytes."""
    if len(payload) != 8:
        raise DecodeError(f"vhost-user {what}: payload {len(payload)} bytes, need 8 (u64)")
    return int(struct.unpack("<Q", payload)[0])


@dataclass(frozen=True, slots=True)
class VringState:
    """`struct vhost_vring_state`: u32 index, u32 num (NUM, BASE, ENABLE, GET_VRING_BASE)."""

    index: int
    num: int

    FORMAT = struct.Struct("<II")

    @classmethod
    def decode(cls, payload: bytes, what: str) -> VringState:
        """Parse 8 bytes."""
        if len(payload) != cls.FORMAT.size:
            raise DecodeError(f"vhost-user {what}: payload {len(payload)} bytes, need 8 "
                              "(vring state)")
        return cls(*cls.FORMAT.unpack(payload))

    def encode(self) -> bytes:
        """8 bytes."""
        return self.FORMAT.pack(self.index, self.num)


@dataclass(frozen=True, slots=True)
class VringAddr:
    """`struct vhost_vring_addr`: ring addresses in the front-end's virtual address space."""

    index: int
    flags: int
    desc: int
    used: int
    avail: int
    log: int

    FORMAT = struct.Struct("<IIQQQQ")

    @classmethod
    def decode(cls, payload: bytes) -> VringAddr:
        """Parse 40 bytes."""
        if len(payload) != cls.FORMAT.size:
            raise DecodeError(f"vhost-user SET_VRING_ADDR: payload {len(payload)} bytes, "
                              f"need {cls.FORMAT.size}")
        return cls(*cls.FORMAT.unpack(payload))

    def encode(self) -> bytes:
        """40 bytes."""
        return self.FORMAT.pack(self.index, self.flags, self.desc, self.used, self.avail,
                                self.log)


@dataclass(frozen=True, slots=True)
class MemoryRegion:
    """One region of SET_MEM_TABLE: `u64 guest_phys_addr, u64 memory_size, u64
    userspace_addr, u64 mmap_offset` (the fd travels beside it, in SCM_RIGHTS)."""

    guest_phys_addr: int
    memory_size: int
    userspace_addr: int
    mmap_offset: int

    FORMAT = struct.Struct("<QQQQ")

    def encode(self) -> bytes:
        """32 bytes."""
        return self.FORMAT.pack(self.guest_phys_addr, self.memory_size, self.userspace_addr,
                                self.mmap_offset)


def decode_mem_table(payload: bytes, nfds: int) -> list[MemoryRegion]:
    """SET_MEM_TABLE's payload `u32 nregions, u32 padding, region[nregions]`; the count must
    match the fds received (one per region)."""
    if len(payload) < 8:
        raise DecodeError(f"vhost-user SET_MEM_TABLE: payload {len(payload)} bytes, need >= 8")
    (count,) = struct.unpack_from("<I", payload)
    if count > VHOST_USER_MAX_RAM_SLOTS:
        raise DecodeError(f"vhost-user SET_MEM_TABLE: {count} regions at byte 0 exceeds "
                          f"{VHOST_USER_MAX_RAM_SLOTS}")
    need = 8 + count * MemoryRegion.FORMAT.size
    if len(payload) < need:
        raise DecodeError(f"vhost-user SET_MEM_TABLE: {count} regions need {need} bytes, "
                          f"got {len(payload)}")
    if nfds != count:
        raise DecodeError(f"vhost-user SET_MEM_TABLE: {count} regions but {nfds} fds")
    return [MemoryRegion(*MemoryRegion.FORMAT.unpack_from(payload, 8 + i * 32))
            for i in range(count)]


def encode_mem_table(regions: list[MemoryRegion]) -> bytes:
    """The inverse of decode_mem_table (tests, captures)."""
    return struct.pack("<II", len(regions), 0) + b"".join(r.encode() for r in regions)


# ---- guest memory and split virtqueues -------------------------------------------------

class Memory(Protocol):
    """Guest memory as the queue code sees it: a writable buffer for a guest-physical
    range. The I/O layer maps the regions; tests give a bytearray."""

    def gpa(self, addr: int, length: int) -> memoryview:
        """`length` bytes at guest-physical `addr`; DecodeError when unmapped."""
        ...


@dataclass
class FlatMemory:
    """Guest memory backed by one buffer starting at guest-physical `base` (tests, and the
    I/O layer's per-region view)."""

    base: int
    buf: bytearray | memoryview

    def gpa(self, addr: int, length: int) -> memoryview:
        """A slice of the buffer; DecodeError outside it."""
        off = addr - self.base
        if off < 0 or length < 0 or off + length > len(self.buf):
            raise DecodeError(f"guest address {addr:#x}+{length} outside "
                              f"[{self.base:#x}, {self.base + len(self.buf):#x})")
        return memoryview(self.buf)[off:off + length]


DESC = struct.Struct("<QIHH")
DESC_SIZE = DESC.size  # 16
DESC_F_NEXT = 1
DESC_F_WRITE = 2
DESC_F_INDIRECT = 4
AVAIL_F_NO_INTERRUPT = 1
USED_ELEM = struct.Struct("<II")


@dataclass(frozen=True, slots=True)
class Descriptor:
    """One split-ring descriptor (virtio 1.2 §2.7.5)."""

    addr: int
    length: int
    flags: int
    next: int

    @property
    def writable(self) -> bool:
        """Device-writable (VIRTQ_DESC_F_WRITE)."""
        return bool(self.flags & DESC_F_WRITE)


@dataclass
class Chain:
    """A descriptor chain popped from the available ring: `head` goes back in the used
    ring; `readable` and `writable` are the buffers in chain order."""

    head: int
    readable: list[memoryview] = field(default_factory=list)
    writable: list[memoryview] = field(default_factory=list)

    def read_all(self) -> bytes:
        """The device-readable bytes, concatenated."""
        return b"".join(bytes(b) for b in self.readable)

    @property
    def capacity(self) -> int:
        """Bytes the device may write."""
        return sum(len(b) for b in self.writable)

    def write_all(self, data: bytes) -> int:
        """Scatter `data` into the writable buffers; returns bytes written (truncated at
        capacity)."""
        done = 0
        for buf in self.writable:
            n = min(len(buf), len(data) - done)
            if n <= 0:
                break
            buf[:n] = data[done:done + n]
            done += n
        return done


@dataclass
class SplitQueue:
    """Device side of one split virtqueue over guest memory (virtio 1.2 §2.7).

    `desc`, `avail`, `used` are guest-physical addresses; `num` the queue size (a power
    of two <= 32768); `last_avail` the next available-ring slot to consume (SET_VRING_BASE).
    EVENT_IDX is not offered, so notification suppression follows only the avail flags.
    """

    num: int
    desc: int
    avail: int
    used: int
    memory: Memory
    last_avail: int = 0

    def __post_init__(self) -> None:
        if self.num <= 0 or self.num > 32768 or self.num & (self.num - 1):
            raise DecodeError(f"virtqueue size {self.num} is not a power of two <= 32768")

    def avail_idx(self) -> int:
        """The driver's available index (free-running u16)."""
        return int(struct.unpack("<H", self.memory.gpa(self.avail + 2, 2))[0])

    def avail_flags(self) -> int:
        """The driver's available-ring flags."""
        return int(struct.unpack("<H", self.memory.gpa(self.avail, 2))[0])

    def used_idx(self) -> int:
        """The device's used index (free-running u16)."""
        return int(struct.unpack("<H", self.memory.gpa(self.used + 2, 2))[0])

    def pending(self) -> int:
        """Chains the driver made available that the device has not consumed."""
        return (self.avail_idx() - self.last_avail) & 0xFFFF

    def descriptor(self, index: int) -> Descriptor:
        """Descriptor `index` of the table."""
        if not 0 <= index < self.num:
            raise DecodeError(f"descriptor index {index} outside the table of {self.num}")
        return Descriptor(*DESC.unpack(self.memory.gpa(self.desc + index * DESC_SIZE,
                                                       DESC_SIZE)))

    def pop(self) -> Chain | None:
        """The next available chain, or None; DecodeError on a malformed chain (a loop,
        a readable buffer after a writable one, an indirect descriptor: not offered)."""
        if self.pending() == 0:
            return None
        slot = self.last_avail % self.num
        (head,) = struct.unpack("<H", self.memory.gpa(self.avail + 4 + 2 * slot, 2))
        self.last_avail = (self.last_avail + 1) & 0xFFFF
        chain = Chain(head)
        index = head
        for _ in range(self.num):
            d = self.descriptor(index)
            if d.flags & DESC_F_INDIRECT:
                raise DecodeError(f"descriptor {index}: INDIRECT, a feature not offered")
            buf = self.memory.gpa(d.addr, d.length)
            if d.writable:
                chain.writable.append(buf)
            elif chain.writable:
                raise DecodeError(f"descriptor {index}: device-readable after a writable one")
            else:
                chain.readable.append(buf)
            if not d.flags & DESC_F_NEXT:
                return chain
            index = d.next
        raise DecodeError(f"descriptor chain from head {head} loops (longer than {self.num})")

    def push(self, head: int, written: int) -> None:
        """Return a chain to the driver: used element, then the used index."""
        idx = self.used_idx()
        slot = idx % self.num
        self.memory.gpa(self.used + 4 + USED_ELEM.size * slot, USED_ELEM.size)[:] = \
            USED_ELEM.pack(head, written)
        self.memory.gpa(self.used + 2, 2)[:] = struct.pack("<H", (idx + 1) & 0xFFFF)

    def needs_interrupt(self) -> bool:
        """False when the driver set VRING_AVAIL_F_NO_INTERRUPT."""
        return not self.avail_flags() & AVAIL_F_NO_INTERRUPT

    def drain(self, handler: Callable[[Chain], int]) -> Iterator[int]:
        """Pop every pending chain, let `handler` fill it (returns bytes written), push it;
        yields the heads served."""
        while (chain := self.pop()) is not None:
            self.push(chain.head, handler(chain))
            yield chain.head


# ---- virtio-scmi ------------------------------------------------------------------------

SCMI_CMDQ = 0
SCMI_EVENTQ = 1


def scmi_serve_chain(chain: Chain, handle: Callable[[bytes], bytes | None]) -> int:
    """Serve one cmdq chain: the request (header + parameters) from the readable buffers
    goes to `handle`; its reply (header + status + return values) is scattered into the
    writable buffers. Returns the used length (0 when there is no reply, e.g. a request
    shorter than the 4-byte header). A reply larger than the buffers is truncated, as
    virtio 1.2 §5.17.6.1 leaves the driver to detect by the used length."""
    reply = handle(chain.read_all())
    if reply is None:
        return 0
    return chain.write_all(reply)
