"""Bytes of the QCOM generic extension: the 16-byte header and the MEMLAT payloads.

No I/O. Layouts are protocol.md §2.2-§2.3 (v8) and §4.2 (RFC 2024); all fields are
little-endian. Every `unpack` reads through `memlat.wire.Reader`, so a short buffer
raises `DecodeError` naming the field and its byte offset within the whole QCOM payload
(`base` defaults to 16, the offset of the param body after the header). `unpack` reads
only the bytes a struct needs and never looks at the rest (decisions.md §1: the 2024
driver left stack garbage in unused bytes).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from memlat.errors import DecodeError
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import (
    GROUP_EVENT_ORDER,
    HEADER_SIZE,
    HwType,
    ParamId,
    algorithm_text,
)
from memlat.wire import Reader, fixed_string, read_c_string, u32s

NAME_SIZE = 20  # node_msg mon_name (protocol.md §2.3)


@dataclass(frozen=True, slots=True)
class QcomHeader:
    """The request header every QCOM command starts with (protocol.md §2.2).

    The algorithm string travels as a u64 split into algo_low (bits 31:0) and algo_high
    (bits 63:32); ext_id is reserved (0).
    """

    algo_low: int
    algo_high: int
    param_id: int
    ext_id: int = 0

    SIZE = HEADER_SIZE

    @classmethod
    def for_algo(cls, algo: int, param_id: int) -> QcomHeader:
        """The header for a 64-bit algorithm value and a param id."""
        return cls(algo & 0xFFFF_FFFF, (algo >> 32) & 0xFFFF_FFFF, param_id)

    @property
    def algo(self) -> int:
        """The 64-bit algorithm value."""
        return self.algo_high << 32 | self.algo_low

    def pack(self) -> bytes:
        """16 bytes: ext_id, algo_low, algo_high, param_id."""
        return u32s(self.ext_id, self.algo_low, self.algo_high, self.param_id)

    @classmethod
    def unpack(cls, data: bytes) -> QcomHeader:
        """Read the first 16 bytes of a QCOM payload."""
        r = Reader(data, context="qcom_header")
        ext_id = r.u32("ext_id")
        algo_low = r.u32("algo_low")
        algo_high = r.u32("algo_high")
        param_id = r.u32("param_id")
        return cls(algo_low, algo_high, param_id, ext_id)


def encode_request(algo: int, param_id: int, body: bytes = b"") -> bytes:
    """A whole QCOM request payload: the 16-byte header, then the param body."""
    return QcomHeader.for_algo(algo, param_id).pack() + bytes(body)


def decode_request(payload: bytes) -> tuple[QcomHeader, bytes]:
    """Split a QCOM request payload into its header and param body.

    Raises DecodeError (with the byte offset) when the payload is shorter than 16 bytes.
    """
    if len(payload) < HEADER_SIZE:
        raise DecodeError(
            f"QCOM request of {len(payload)} bytes is shorter than the {HEADER_SIZE}-byte "
            "header", offset=len(payload), field="qcom_header")
    return QcomHeader.unpack(payload[:HEADER_SIZE]), bytes(payload[HEADER_SIZE:])


@dataclass(frozen=True, slots=True)
class NodeMsg:
    """node_msg, 36 bytes: SET_MEM_GROUP and SET_MONITOR (protocol.md §2.3).

    cpumask: bit per CPU; hw_type: memory group; mon_type: 0 latency (IPM), 1 compute;
    mon_idx: 0-based within the group; name: ASCII, NUL-terminated in 20 bytes.
    """

    cpumask: int
    hw_type: int
    mon_type: int = 0
    mon_idx: int = 0
    name: str = ""

    SIZE = 36

    def pack(self) -> bytes:
        """36 bytes; the name is NUL-padded (our agent never sends garbage)."""
        return (u32s(self.cpumask, self.hw_type, self.mon_type, self.mon_idx)
                + fixed_string(self.name, NAME_SIZE))

    @classmethod
    def unpack(cls, data: bytes, *, base: int = HEADER_SIZE) -> NodeMsg:
        """Read 36 bytes; the name is the text before the first NUL."""
        r = Reader(data, base=base, context="node_msg")
        cpumask = r.u32("cpumask")
        hw_type = r.u32("hw_type")
        mon_type = r.u32("mon_type")
        mon_idx = r.u32("mon_idx")
        name = read_c_string(r.raw(NAME_SIZE, "mon_name"))
        return cls(cpumask, hw_type, mon_type, mon_idx, name)


@dataclass(frozen=True, slots=True)
class ScalarMsg:
    """scalar_param_msg, 12 bytes: hw_type, mon_idx, val (protocol.md §2.3).

    The unit of val depends on the param: kHz (SET_MIN/MAX_FREQ, ADAPTIVE_*), or a level
    in a DDR_QOS group; instructions per miss (IPM_CEIL, IPM_FILTER); percent
    (*_STALL_FLOOR, WB_PCT, FREQ_SCALE_PCT); MHz (FREQ_SCALE_CEIL/FLOOR_MHZ). It is also
    the GET_CUR_FREQ request (val 0).
    """

    hw_type: int
    mon_idx: int
    val: int = 0

    SIZE = 12

    def pack(self) -> bytes:
        """12 bytes."""
        return u32s(self.hw_type, self.mon_idx, self.val)

    @classmethod
    def unpack(cls, data: bytes, *, base: int = HEADER_SIZE) -> ScalarMsg:
        """Read 12 bytes."""
        r = Reader(data, base=base, context="scalar_param_msg")
        return cls(r.u32("hw_type"), r.u32("mon_idx"), r.u32("val"))


@dataclass(frozen=True, slots=True)
class EvMapMsg:
    """ev_map_msg: num_evs, hw_type, then counter ids (protocol.md §2.3, §4.2).

    cids holds every slot present (counter ids, 0xFF = unused); only the first num_evs
    count. The drivers send u32 slots: 5 (28 B) in v8, 4 (24 B) in the RFC; the doc says
    u8. `unpack` accepts both (decisions.md §1), deciding by length: u32 slots when the
    body after the 8-byte head is a multiple of 4 with at least num_evs slots
    (8 + 4n and the fixed 24/28-byte structs), else u8 slots when at least num_evs bytes
    follow (8 + n). cid_bytes records which.
    """

    num_evs: int
    hw_type: int
    cids: tuple[int, ...]
    cid_bytes: int = field(default=4, compare=False)

    HEAD = 8

    @property
    def events(self) -> tuple[int, ...]:
        """The counted slots: cids[:num_evs]."""
        return self.cids[: self.num_evs]

    def pack(self, dialect: Dialect = Dialect.V8) -> bytes:
        """u32 slots, zero-filled to the dialect's slot count (28 B v8, 24 B rfc2024)."""
        slots = dialect.common_event_slots
        if len(self.cids) > slots:
            raise ValueError(f"{len(self.cids)} event ids do not fit the {slots} slots of "
                             f"the {dialect.value} ev_map_msg")
        cids = tuple(self.cids) + (0,) * (slots - len(self.cids))
        return u32s(self.num_evs, self.hw_type, *cids)

    @classmethod
    def unpack(cls, data: bytes, *, base: int = HEADER_SIZE) -> EvMapMsg:
        """Read the head, then u32 or u8 slots by length (see the class docstring)."""
        r = Reader(data, base=base, context="ev_map_msg")
        num_evs = r.u32("num_evs")
        hw_type = r.u32("hw_type")
        rest = r.remaining
        if rest % 4 == 0 and rest // 4 >= num_evs:
            cids = tuple(r.u32(f"cid[{i}]") for i in range(rest // 4))
            return cls(num_evs, hw_type, cids, 4)
        if rest >= num_evs:
            cids = tuple(r.u8(f"cid[{i}]") for i in range(rest))
            return cls(num_evs, hw_type, cids, 1)
        raise DecodeError(
            f"ev_map_msg with num_evs {num_evs} has only {rest} bytes of event ids",
            offset=base + cls.HEAD, field="ev_map_msg.cid")


@dataclass(frozen=True, slots=True)
class MapMsg:
    """map_param_msg: hw_type, mon_idx, nr_rows, then {u16 v1, u16 v2} rows.

    v1 is CPU MHz; v2 is memory MHz, or a 0/1 level in a DDR_QOS group. v8 carries 10
    rows (52 B), the RFC 6 rows (36 B); unused rows are zero when we pack and never read
    when we unpack (protocol.md §2.3, §4.2).
    """

    hw_type: int
    mon_idx: int
    rows: tuple[tuple[int, int], ...]

    HEAD = 12

    @property
    def nr_rows(self) -> int:
        """Number of rows in use."""
        return len(self.rows)

    def pack(self, dialect: Dialect = Dialect.V8) -> bytes:
        """12 + 4 x dialect.map_rows bytes, unused rows zero-filled."""
        slots = dialect.map_rows
        if len(self.rows) > slots:
            raise ValueError(f"{len(self.rows)} map rows do not fit the {slots} rows of the "
                             f"{dialect.value} map_param_msg")
        body = u32s(self.hw_type, self.mon_idx, len(self.rows))
        body += b"".join(struct.pack("<HH", v1, v2) for v1, v2 in self.rows)
        return body + b"\0" * (4 * (slots - len(self.rows)))

    @classmethod
    def unpack(cls, data: bytes, *, base: int = HEADER_SIZE) -> MapMsg:
        """Read the head and exactly nr_rows rows; bytes after them are not read."""
        r = Reader(data, base=base, context="map_param_msg")
        hw_type = r.u32("hw_type")
        mon_idx = r.u32("mon_idx")
        nr_rows = r.u32("nr_rows")
        if r.remaining < 4 * nr_rows:
            raise DecodeError(
                f"map_param_msg claims {nr_rows} rows but only {r.remaining} bytes follow",
                offset=r.offset, field="map_param_msg.rows")
        rows = tuple((r.u16(f"rows[{i}].v1"), r.u16(f"rows[{i}].v2")) for i in range(nr_rows))
        return cls(hw_type, mon_idx, rows)


@dataclass(frozen=True, slots=True)
class SampleMs:
    """SAMPLE_MS body, 4 bytes: the sampling period in milliseconds (s32)."""

    ms: int

    SIZE = 4

    def pack(self) -> bytes:
        """4 bytes, s32."""
        return struct.pack("<i", self.ms)

    @classmethod
    def unpack(cls, data: bytes, *, base: int = HEADER_SIZE) -> SampleMs:
        """Read 4 bytes as s32."""
        return cls(Reader(data, base=base, context="sample_ms").s32("ms"))


@dataclass(frozen=True, slots=True)
class FreqMethod:
    """SET_EFFECTIVE_FREQ_METHOD body, 4 bytes s32: 0 cycles x cluster max / const
    cycles, 1 cycles / window time (protocol.md §2.4)."""

    method: int

    SIZE = 4

    def pack(self) -> bytes:
        """4 bytes, s32."""
        return struct.pack("<i", self.method)

    @classmethod
    def unpack(cls, data: bytes, *, base: int = HEADER_SIZE) -> FreqMethod:
        """Read 4 bytes as s32."""
        return cls(Reader(data, base=base, context="freq_method").s32("method"))


#: The GET_CUR_FREQ request is a scalar_param_msg with val 0 (protocol.md §2.4).
GetCurFreq = ScalarMsg


@dataclass(frozen=True, slots=True)
class FreqReply:
    """A 4-byte u32 frequency reply: GET_CUR_FREQ (kHz, or a 0/1 level in a DDR_QOS
    group) and GET_ADAPTIVE_CUR_FREQ (kHz)."""

    value: int

    SIZE = 4

    def pack(self) -> bytes:
        """4 bytes, u32."""
        return u32s(self.value)

    @classmethod
    def unpack(cls, data: bytes, *, base: int = 0) -> FreqReply:
        """Read 4 bytes (base 0: the reply values follow the status word)."""
        return cls(Reader(data, base=base, context="freq_reply").u32("value"))


@dataclass(frozen=True, slots=True)
class GetAdaptiveCurFreq:
    """GET_ADAPTIVE_CUR_FREQ request, 4 bytes: u32 hw_type; the reply is a FreqReply (kHz)."""

    hw_type: int

    SIZE = 4

    def pack(self) -> bytes:
        """4 bytes, u32."""
        return u32s(self.hw_type)

    @classmethod
    def unpack(cls, data: bytes, *, base: int = HEADER_SIZE) -> GetAdaptiveCurFreq:
        """Read 4 bytes."""
        return cls(Reader(data, base=base, context="get_adaptive_cur_freq").u32("hw_type"))


@dataclass(frozen=True, slots=True)
class Timestamp:
    """GET_TIMESTAMP reply, 8 bytes: u64 nanoseconds of the platform clock.

    The request has no documented body, but Linux needs the request buffer to be at
    least the reply size (protocol.md §5.9), so our agent sends 8 zero bytes.
    """

    ns: int

    SIZE = 8

    def pack(self) -> bytes:
        """8 bytes, u64."""
        return struct.pack("<Q", self.ns & 0xFFFF_FFFF_FFFF_FFFF)

    @classmethod
    def unpack(cls, data: bytes, *, base: int = 0) -> Timestamp:
        """Read 8 bytes."""
        return cls(Reader(data, base=base, context="timestamp").u64("ns"))


_SCALAR_UNITS = {
    ParamId.ADAPTIVE_LOW_FREQ: "kHz",
    ParamId.ADAPTIVE_HIGH_FREQ: "kHz",
    ParamId.IPM_CEIL: "ipm",
    ParamId.FE_STALL_FLOOR: "%",
    ParamId.BE_STALL_FLOOR: "%",
    ParamId.WB_PCT: "%",
    ParamId.IPM_FILTER: "ipm",
    ParamId.FREQ_SCALE_PCT: "%",
    ParamId.FREQ_SCALE_CEIL_MHZ: "MHz",
    ParamId.FREQ_SCALE_FLOOR_MHZ: "MHz",
    ParamId.SET_MIN_FREQ: "kHz/level",
    ParamId.SET_MAX_FREQ: "kHz/level",
    ParamId.GET_CUR_FREQ: "",
}


def _describe_body(param_id: int, body: bytes, dialect: Dialect) -> str:
    pid = ParamId(param_id)
    if pid in (ParamId.SET_MEM_GROUP, ParamId.SET_MONITOR):
        n = NodeMsg.unpack(body)
        text = f"hw={HwType.label(n.hw_type)} cpumask={n.cpumask:#x}"
        if pid is ParamId.SET_MONITOR:
            text += f" mon={n.mon_idx} type={'compute' if n.mon_type == 1 else n.mon_type}"
            text += f" name={n.name!r}"
        return text
    if pid in (ParamId.SET_COMMON_EV_MAP, ParamId.SET_GRP_EV_MAP):
        e = EvMapMsg.unpack(body)
        order = (dialect.common_event_order if pid is ParamId.SET_COMMON_EV_MAP
                 else GROUP_EVENT_ORDER)
        slots = [f"{order[i] if i < len(order) else i}={c:#x}" for i, c in enumerate(e.events)]
        return f"hw={HwType.label(e.hw_type)} num_evs={e.num_evs} [{', '.join(slots)}]"
    if pid is ParamId.MON_FREQ_MAP:
        m = MapMsg.unpack(body)
        rows = ", ".join(f"{v1}->{v2}" for v1, v2 in m.rows)
        return f"hw={HwType.label(m.hw_type)} mon={m.mon_idx} rows={m.nr_rows} [{rows}] (MHz)"
    if pid in _SCALAR_UNITS:
        s = ScalarMsg.unpack(body)
        unit = f" {_SCALAR_UNITS[pid]}" if _SCALAR_UNITS[pid] else ""
        return f"hw={HwType.label(s.hw_type)} mon={s.mon_idx} val={s.val}{unit}"
    if pid is ParamId.SAMPLE_MS:
        return f"{SampleMs.unpack(body).ms} ms"
    if pid is ParamId.SET_EFFECTIVE_FREQ_METHOD:
        return f"method={FreqMethod.unpack(body).method}"
    if pid is ParamId.GET_ADAPTIVE_CUR_FREQ:
        return f"hw={HwType.label(GetAdaptiveCurFreq.unpack(body).hw_type)}"
    return f"{len(body)} B" if body else ""


def describe(param_id: int, body: bytes, dialect: Dialect = Dialect.V8) -> str:
    """A readable one-line decode of a param body for logs; never raises.

    E.g. `MON_FREQ_MAP hw=ddr mon=0 rows=6 [999->547, ...] (MHz)`. Undecodable bodies
    are shown as hex with the decode error.
    """
    name = ParamId.label(param_id)
    try:
        ParamId(param_id)
    except ValueError:
        return f"{name} {body.hex()}".rstrip()
    try:
        detail = _describe_body(param_id, body, dialect)
    except DecodeError as exc:
        detail = f"undecodable ({exc}): {body.hex()}"
    return f"{name} {detail}".rstrip()


def describe_request(payload: bytes, dialect: Dialect = Dialect.V8) -> str:
    """describe() of a whole QCOM request payload, prefixed with its algorithm string."""
    try:
        header, body = decode_request(payload)
    except DecodeError as exc:
        return f"undecodable QCOM request ({exc}): {payload.hex()}"
    found = Dialect.for_algorithm(header.algo)
    return f"[{algorithm_text(header.algo)}] " + describe(header.param_id, body,
                                                          found or dialect)
