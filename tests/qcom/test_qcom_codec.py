"""Codec golden tests: protocol.md §3.5 (v8) and §4.4 (RFC 2024) byte for byte."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memlat.errors import DecodeError
from memlat.qcom.codec import (
    EvMapMsg,
    FreqMethod,
    FreqReply,
    GetAdaptiveCurFreq,
    MapMsg,
    NodeMsg,
    QcomHeader,
    SampleMs,
    ScalarMsg,
    Timestamp,
    decode_request,
    describe,
    describe_request,
    encode_request,
)
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import (
    ADAPTIVE_LEVEL_1,
    Algorithm,
    HwType,
    ParamId,
    QcomMessage,
    message_for,
)


def _hex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


V8_COMMON_EV = _hex("00000000 54414c4d 454d0000 12000000 05000000 ff000000 "
                    "02000000 00000000 01000000 ff000000 03000000")
V8_MAP_DDR0 = _hex("00000000 54414c4d 454d0000 20000000 00000000 00000000 06000000 "
                   "e7032302 a0050003 87061306 8d082c08 d409730c 140f8010") + bytes(16)
V8_SAMPLE_MS = _hex("00000000 54414c4d 454d0000 1f000000 04000000")
V8_START = _hex("00000000 54414c4d 454d0000 24000000")
V8_GET_CUR = _hex("00000000 54414c4d 454d0000 23000000 00000000 00000000 00000000")
V8_GET_CUR_REPLY = _hex("00000000 b8580800")
RFC_MAP6_BODY = _hex("00000000 00000000 06000000 e7032302 a0050003 87061306 "
                     "8d082c08 6c08730c 140f8010")
RFC_HEADER_START = _hex("00000000 6d656d6c 61740000 20000000")
RFC_COMMON_EV = _hex("00000000 6d656d6c 61740000 12000000 04000000 ff000000 "
                     "02000000 00000000 ff000000 ff000000")

DDR_MAP = ((999, 547), (1440, 768), (1671, 1555), (2189, 2092), (2516, 3187), (3860, 4224))
RFC_DDR0 = ((999, 547), (1440, 768), (1671, 1555), (2189, 2092), (2156, 3187), (3860, 4224))


def test_v8_common_ev_map_golden() -> None:
    payload = encode_request(Algorithm.MEMLAT, ParamId.SET_COMMON_EV_MAP,
                             EvMapMsg(5, HwType.ALL, (2, 0, 1, 0xFF, 3)).pack())
    assert payload == V8_COMMON_EV and len(payload) == 44
    header, body = decode_request(payload)
    assert header == QcomHeader.for_algo(Algorithm.MEMLAT, ParamId.SET_COMMON_EV_MAP)
    assert header.algo == Algorithm.MEMLAT
    assert EvMapMsg.unpack(body) == EvMapMsg(5, 0xFF, (2, 0, 1, 0xFF, 3))


def test_v8_map_ddr_mon0_golden() -> None:
    payload = encode_request(Algorithm.MEMLAT, ParamId.MON_FREQ_MAP,
                             MapMsg(0, 0, DDR_MAP).pack(Dialect.V8))
    assert payload == V8_MAP_DDR0 and len(payload) == 68
    header, body = decode_request(payload)
    assert header.param_id == ParamId.MON_FREQ_MAP
    decoded = MapMsg.unpack(body)
    assert decoded == MapMsg(0, 0, DDR_MAP) and decoded.nr_rows == 6


def test_v8_sample_ms_start_and_get_cur_freq_golden() -> None:
    assert encode_request(Algorithm.MEMLAT, ParamId.SAMPLE_MS, SampleMs(4).pack()) == V8_SAMPLE_MS
    assert SampleMs.unpack(decode_request(V8_SAMPLE_MS)[1]) == SampleMs(4)
    assert encode_request(Algorithm.MEMLAT, ParamId.START_TIMER) == V8_START
    assert decode_request(V8_START) == (
        QcomHeader(0x4D4C4154, 0x00004D45, ParamId.START_TIMER), b"")
    get = encode_request(Algorithm.MEMLAT, ParamId.GET_CUR_FREQ, ScalarMsg(0, 0, 0).pack())
    assert get == V8_GET_CUR and len(get) == 28
    assert ScalarMsg.unpack(decode_request(get)[1]) == ScalarMsg(0, 0, 0)
    status, = struct.unpack_from("<i", V8_GET_CUR_REPLY)
    assert status == 0
    assert FreqReply.unpack(V8_GET_CUR_REPLY[4:]) == FreqReply(547000)
    assert V8_GET_CUR_REPLY[4:] == FreqReply(547000).pack()


def test_rfc_map6_golden() -> None:
    body = MapMsg(0, 0, RFC_DDR0).pack(Dialect.RFC2024)
    assert body == RFC_MAP6_BODY and len(body) == 36
    payload = encode_request(Algorithm.MEMLAT_RFC, ParamId.MON_FREQ_MAP, body)
    assert len(payload) == 52 and payload.startswith(RFC_HEADER_START)
    assert MapMsg.unpack(decode_request(payload)[1]).rows == RFC_DDR0


def test_rfc_common_ev_golden() -> None:
    payload = encode_request(Algorithm.MEMLAT_RFC, ParamId.SET_COMMON_EV_MAP,
                             EvMapMsg(4, 0xFF, (2, 0, 0xFF, 0xFF)).pack(Dialect.RFC2024))
    assert payload == RFC_COMMON_EV and len(payload) == 40
    header, body = decode_request(payload)
    assert header.algo == Algorithm.MEMLAT_RFC
    assert EvMapMsg.unpack(body).events == (2, 0, 0xFF, 0xFF)


def test_algorithm_strings_and_dialects() -> None:
    assert encode_request(Algorithm.MEMLAT, 0)[4:12] == b"TALMEM\0\0"
    assert encode_request(Algorithm.MEMLAT_RFC, 0)[4:12] == b"memlat\0\0"
    assert Algorithm.MEMLAT.text == "MEMLAT" and Algorithm.MEMLAT_RFC.text == "memlat"
    assert Dialect.for_algorithm(Algorithm.MEMLAT) is Dialect.V8
    assert Dialect.for_algorithm(Algorithm.MEMLAT_RFC) is Dialect.RFC2024
    assert Dialect.for_algorithm(0x1234) is None
    assert (Dialect.V8.map_rows, Dialect.RFC2024.map_rows) == (10, 6)
    assert (Dialect.V8.common_event_slots, Dialect.RFC2024.common_event_slots) == (5, 4)
    assert [int(p) for p in ParamId] == [3, 4, *range(16, 40)]
    assert ADAPTIVE_LEVEL_1 == 40 and 40 not in {int(p) for p in ParamId}
    assert message_for(ParamId.START_TIMER) is QcomMessage.START_ACTIVITY
    assert message_for(ParamId.STOP_TIMER) is QcomMessage.STOP_ACTIVITY
    assert message_for(ParamId.GET_TIMESTAMP) is QcomMessage.GET_PARAM
    assert message_for(ParamId.IPM_CEIL) is QcomMessage.SET_PARAM
    assert message_for(ParamId.SET_LOG_LEVEL) is None and message_for(40) is None


def test_struct_sizes() -> None:
    assert len(NodeMsg(0xF, 0, 0, 0, "mon_0").pack()) == 36
    assert len(ScalarMsg(0, 0, 1).pack()) == 12
    assert len(EvMapMsg(3, 0, (5, 0xFF, 0xFF)).pack()) == 28
    assert len(EvMapMsg(3, 0, (5, 0xFF, 0xFF)).pack(Dialect.RFC2024)) == 24
    assert len(MapMsg(0, 0, ((1, 2),)).pack()) == 52
    assert len(MapMsg(0, 0, ((1, 2),)).pack(Dialect.RFC2024)) == 36
    assert len(SampleMs(4).pack()) == len(FreqMethod(1).pack()) == 4
    assert len(GetAdaptiveCurFreq(0).pack()) == len(FreqReply(1).pack()) == 4
    assert len(Timestamp(5).pack()) == 8
    # unused rows and event slots are zero-filled
    assert EvMapMsg(3, 0, (5, 0xFF, 0xFF)).pack()[20:] == bytes(8)
    assert MapMsg(0, 0, ((1, 2),)).pack()[16:] == bytes(36)
    with pytest.raises(ValueError, match="do not fit"):
        MapMsg(0, 0, ((1, 2),) * 7).pack(Dialect.RFC2024)
    with pytest.raises(ValueError, match="do not fit"):
        EvMapMsg(5, 0xFF, (1, 2, 3, 4, 5)).pack(Dialect.RFC2024)


def test_ev_map_u8_and_u32_by_length() -> None:
    """decisions.md §1: cid slots are u8 (8 + n bytes) or u32 (8 + 4n bytes)."""
    u8 = struct.pack("<2I", 5, 0xFF) + bytes([2, 0, 1, 0xFF, 3])
    got = EvMapMsg.unpack(u8)
    assert got.events == (2, 0, 1, 0xFF, 3) and got.cid_bytes == 1
    u32 = struct.pack("<7I", 5, 0xFF, 2, 0, 1, 0xFF, 3)
    got = EvMapMsg.unpack(u32)
    assert got.events == (2, 0, 1, 0xFF, 3) and got.cid_bytes == 4
    group_u8 = struct.pack("<2I", 3, 0) + bytes([5, 0xFF, 0xFF])
    assert EvMapMsg.unpack(group_u8).events == (5, 0xFF, 0xFF)
    with pytest.raises(DecodeError) as info:
        EvMapMsg.unpack(struct.pack("<2I", 5, 0xFF) + bytes(3))
    assert info.value.offset == 24


def test_decode_errors_name_offsets() -> None:
    with pytest.raises(DecodeError) as info:
        decode_request(bytes(10))
    assert info.value.offset == 10 and "16-byte header" in str(info.value)
    with pytest.raises(DecodeError) as info:
        ScalarMsg.unpack(bytes(10))
    assert info.value.offset == 16 + 8 and info.value.field == "scalar_param_msg.val"
    with pytest.raises(DecodeError) as info:
        MapMsg.unpack(struct.pack("<3I", 0, 0, 7) + bytes(24))
    assert info.value.offset == 28 and "7 rows" in str(info.value)
    with pytest.raises(DecodeError) as info:
        NodeMsg.unpack(bytes(30))
    assert info.value.field == "node_msg.mon_name" and info.value.offset == 32


def test_map_unpack_ignores_rows_past_nr_rows() -> None:
    body = struct.pack("<3I", 1, 0, 2) + struct.pack("<4H", 999, 300, 1440, 466) + b"\xde" * 16
    assert MapMsg.unpack(body) == MapMsg(1, 0, ((999, 300), (1440, 466)))


def test_node_name_garbage_after_nul() -> None:
    body = struct.pack("<4I", 0xFFF, 0, 0, 0) + b"monitor-0\0" + b"\xff\x13" * 5
    assert NodeMsg.unpack(body).name == "monitor-0"


def test_describe_lines() -> None:
    assert describe(ParamId.MON_FREQ_MAP, MapMsg(0, 0, DDR_MAP).pack()).startswith(
        "MON_FREQ_MAP hw=ddr mon=0 rows=6 [999->547, 1440->768")
    assert describe(ParamId.SET_MIN_FREQ, ScalarMsg(1, 2, 300000).pack()) == \
        "SET_MIN_FREQ hw=llcc mon=2 val=300000 kHz/level"
    assert describe(ParamId.SAMPLE_MS, SampleMs(4).pack()) == "SAMPLE_MS 4 ms"
    assert describe(ParamId.SET_COMMON_EV_MAP, EvMapMsg(4, 0xFF, (2, 0, 0xFF, 0xFF)).pack(
        Dialect.RFC2024), Dialect.RFC2024) == \
        "SET_COMMON_EV_MAP hw=all num_evs=4 [inst=0x2, cyc=0x0, fe_stall=0xff, be_stall=0xff]"
    assert describe(ParamId.SET_MONITOR, NodeMsg(0xF, 0, 1, 3, "mon_3").pack()) == \
        "SET_MONITOR hw=ddr cpumask=0xf mon=3 type=compute name='mon_3'"
    assert describe(ParamId.START_TIMER, b"") == "START_TIMER"
    assert "undecodable" in describe(ParamId.IPM_CEIL, b"\x01")
    assert describe(99, b"\x01") == "param 99 01"
    assert describe_request(V8_SAMPLE_MS) == "[MEMLAT] SAMPLE_MS 4 ms"
    assert describe_request(RFC_COMMON_EV).startswith("[memlat] SET_COMMON_EV_MAP")
    assert "undecodable" in describe_request(b"\0")


u32 = st.integers(0, 0xFFFF_FFFF)
u16 = st.integers(0, 0xFFFF)


@given(u32, u32, u32, u32, st.text(alphabet="abcdefghij_0123456789", max_size=19))
def test_node_roundtrip(mask: int, hw: int, mtype: int, idx: int, name: str) -> None:
    msg = NodeMsg(mask, hw, mtype, idx, name)
    assert NodeMsg.unpack(msg.pack()) == msg


@given(u32, u32, st.lists(st.tuples(u16, u16), max_size=10))
def test_map_roundtrip(hw: int, idx: int, rows: list[tuple[int, int]]) -> None:
    msg = MapMsg(hw, idx, tuple(rows))
    assert MapMsg.unpack(msg.pack()) == msg
    if len(rows) <= 6:
        assert MapMsg.unpack(msg.pack(Dialect.RFC2024)) == msg


@given(st.integers(0, 5), u32, st.lists(st.integers(0, 0xFF), min_size=5, max_size=5))
def test_ev_map_roundtrip(num: int, hw: int, cids: list[int]) -> None:
    msg = EvMapMsg(num, hw, tuple(cids))
    assert EvMapMsg.unpack(msg.pack()).events == tuple(cids[:num])


@given(st.integers(0, (1 << 64) - 1), u32, st.binary(max_size=64))
def test_request_roundtrip(algo: int, pid: int, body: bytes) -> None:
    header, got = decode_request(encode_request(algo, pid, body))
    assert (header.algo, header.param_id, header.ext_id, got) == (algo, pid, 0, body)


@given(st.integers(0, 45), st.binary(max_size=70))
def test_describe_never_raises(pid: int, body: bytes) -> None:
    assert describe(pid, body).startswith(ParamId.label(pid))
