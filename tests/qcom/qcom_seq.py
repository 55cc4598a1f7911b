"""Hand-built QCOM command sequences from protocol.md §3.2/§3.5 (v8 Hamoa) and
§4.3/§4.4 (RFC 2024 X1E80100), and the configuration each should leave behind."""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from memlat.cpucp.state import CpucpSnapshot, GroupState
from memlat.governor.spec import MonitorSpec
from memlat.qcom.codec import (
    EvMapMsg,
    FreqMethod,
    MapMsg,
    NodeMsg,
    SampleMs,
    ScalarMsg,
    encode_request,
)
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import Algorithm, ParamId, QcomMessage


@dataclass(frozen=True)
class Cmd:
    """One QCOM command: SCMI message id and the whole QCOM payload."""

    message_id: int
    param: ParamId
    payload: bytes


def _set(algo: int, pid: ParamId, body: bytes) -> Cmd:
    return Cmd(QcomMessage.SET_PARAM, pid, encode_request(algo, pid, body))


# -- v8 Hamoa (protocol.md §3.2) -------------------------------------------------------
DDR_MAP = ((999, 547), (1440, 768), (1671, 1555), (2189, 2092), (2516, 3187), (3860, 4224))
DDR_COMPUTE_MAP = ((1440, 547), (2189, 768), (2516, 1555), (3860, 2092))
LLCC_MAP = ((999, 300), (1440, 466), (1671, 600), (2189, 806), (2516, 933), (3860, 1066))
QOS_MAP = ((2189, 0), (3860, 1))
MASKS = (0x00F, 0x0F0, 0xF00)

# (hw_type, min, max, [(mask, ipm_ceil, be_floor, mon_type, map)])
HAMOA = [
    (0, 200000, 4224000, [(m, 20000000, 1, 0, DDR_MAP) for m in MASKS]
     + [(0xFFF, 0, 0, 1, DDR_COMPUTE_MAP)]),
    (1, 300000, 1066000, [(m, 20000000, 1, 0, LLCC_MAP) for m in MASKS]),
    (2, 0, 1, [(m, 20000000, 1, 0, QOS_MAP) for m in MASKS]),
]
HAMOA_COMMON = (2, 0, 1, 0xFF, 3)
HAMOA_GRP_EV = (5, 0xFF, 0xFF)


def hamoa_v8_sequence(*, start: bool = True) -> list[Cmd]:
    """The 70 commands of the v8 probe on x1e80100 (protocol.md §3.5)."""
    a = Algorithm.MEMLAT
    seq = [_set(a, ParamId.SET_COMMON_EV_MAP, EvMapMsg(5, 0xFF, HAMOA_COMMON).pack())]
    for hw, lo, hi, mons in HAMOA:
        seq.append(_set(a, ParamId.SET_MEM_GROUP, NodeMsg(0xFFF, hw).pack()))
        seq.append(_set(a, ParamId.SET_GRP_EV_MAP, EvMapMsg(3, hw, HAMOA_GRP_EV).pack()))
        for i, (mask, ipm, be, mtype, rows) in enumerate(mons):
            seq += [
                _set(a, ParamId.SET_MONITOR, NodeMsg(mask, hw, mtype, i, f"mon_{i}").pack()),
                _set(a, ParamId.IPM_CEIL, ScalarMsg(hw, i, ipm).pack()),
                _set(a, ParamId.BE_STALL_FLOOR, ScalarMsg(hw, i, be).pack()),
                _set(a, ParamId.MON_FREQ_MAP, MapMsg(hw, i, rows).pack()),
                _set(a, ParamId.SET_MIN_FREQ, ScalarMsg(hw, i, lo).pack()),
                _set(a, ParamId.SET_MAX_FREQ, ScalarMsg(hw, i, hi).pack()),
            ]
    seq.append(_set(a, ParamId.SAMPLE_MS, SampleMs(4).pack()))
    seq.append(_set(a, ParamId.SET_EFFECTIVE_FREQ_METHOD, FreqMethod(1).pack()))
    if start:
        seq.append(Cmd(QcomMessage.START_ACTIVITY, ParamId.START_TIMER,
                       encode_request(a, ParamId.START_TIMER)))
    return seq


def hamoa_snapshot(*, running: bool = True) -> CpucpSnapshot:
    """The configuration protocol.md §3.2 describes, as the platform should hold it."""
    groups = []
    for hw, lo, hi, mons in HAMOA:
        monitors = tuple(
            MonitorSpec(mask, compute=mtype == 1, name=f"mon_{i}", ipm_ceil=ipm,
                        be_stall_floor=be, map_rows=rows, min_freq=lo, max_freq=hi)
            for i, (mask, ipm, be, mtype, rows) in enumerate(mons))
        groups.append(GroupState(hw, 0xFFF, HAMOA_GRP_EV, monitors=monitors))
    return CpucpSnapshot(tuple(groups), HAMOA_COMMON, Dialect.V8, sample_ms=4, method=1,
                         running=running)


# -- RFC 2024 (protocol.md §4.3/§4.4) --------------------------------------------------
RFC_DDR0 = ((999, 547), (1440, 768), (1671, 1555), (2189, 2092), (2156, 3187), (3860, 4224))
RFC_DDR1 = ((1440, 200), (2189, 768), (2156, 1555), (3860, 2092))
RFC_LLCC0 = ((999, 300), (1440, 466), (1671, 600), (2189, 806), (2156, 933), (3860, 1066))
RFC_COMMON = (2, 0, 0xFF, 0xFF)


def _garbage_name(rng: random.Random, text: str) -> bytes:
    """strscpy without padding: the text, a NUL, then stack garbage (protocol.md §4.2)."""
    raw = text.encode() + b"\0"
    return raw + rng.randbytes(20 - len(raw))


def _rfc_node(rng: random.Random, mask: int, hw: int, mtype: int, idx: int,
              name: bytes) -> bytes:
    return struct.pack("<4I", mask, hw, mtype, idx) + name


def _rfc_map(rng: random.Random, hw: int, idx: int, rows: tuple[tuple[int, int], ...]) -> bytes:
    body = struct.pack("<3I", hw, idx, len(rows))
    body += b"".join(struct.pack("<HH", a, b) for a, b in rows)
    return body + rng.randbytes(36 - len(body))  # rows >= nr_rows are garbage


def _rfc_grp_ev(rng: random.Random, hw: int) -> bytes:
    return struct.pack("<5I", 3, hw, 5, 0xFF, 0xFF) + rng.randbytes(4)  # cid[3] garbage


def rfc2024_sequence(seed: int = 2024) -> list[Cmd]:
    """The 22 commands of the RFC probe (protocol.md §4.4), garbage bytes seeded."""
    rng = random.Random(seed)
    a = Algorithm.MEMLAT_RFC
    s = lambda pid, body: _set(a, pid, body)  # noqa: E731
    seq = [s(ParamId.SET_COMMON_EV_MAP, EvMapMsg(4, 0xFF, RFC_COMMON).pack(Dialect.RFC2024))]
    # DDR (memory@0)
    seq.append(s(ParamId.SET_MEM_GROUP, _rfc_node(rng, 0, 0, 0, 0, rng.randbytes(20))))
    seq.append(s(ParamId.SET_GRP_EV_MAP, _rfc_grp_ev(rng, 0)))
    for idx, mtype, ipm, rows in ((0, 0, 20000000, RFC_DDR0), (1, 1, 0, RFC_DDR1)):
        seq += [
            s(ParamId.SET_MONITOR, _rfc_node(rng, 0xFFF, 0, mtype, idx,
                                             _garbage_name(rng, f"monitor-{idx}"))),
            s(ParamId.IPM_CEIL, ScalarMsg(0, idx, ipm).pack()),
            s(ParamId.MON_FREQ_MAP, _rfc_map(rng, 0, idx, rows)),
            s(ParamId.SET_MIN_FREQ, ScalarMsg(0, idx, 200000).pack()),
            s(ParamId.SET_MAX_FREQ, ScalarMsg(0, idx, 4224000).pack()),
        ]
    # LLCC (memory@1)
    seq.append(s(ParamId.SET_MEM_GROUP, _rfc_node(rng, 0, 1, 0, 0, rng.randbytes(20))))
    seq.append(s(ParamId.SET_GRP_EV_MAP, _rfc_grp_ev(rng, 1)))
    seq += [
        s(ParamId.SET_MONITOR, _rfc_node(rng, 0xFFF, 1, 0, 0, _garbage_name(rng, "monitor-0"))),
        s(ParamId.IPM_CEIL, ScalarMsg(1, 0, 20000000).pack()),
        s(ParamId.MON_FREQ_MAP, _rfc_map(rng, 1, 0, RFC_LLCC0)),
        s(ParamId.SET_MIN_FREQ, ScalarMsg(1, 0, 300000).pack()),
        s(ParamId.SET_MAX_FREQ, ScalarMsg(1, 0, 1067000).pack()),
    ]
    seq.append(s(ParamId.SAMPLE_MS, SampleMs(8).pack()))
    seq.append(Cmd(QcomMessage.START_ACTIVITY, ParamId.START_TIMER,
                   encode_request(a, ParamId.START_TIMER)))
    return seq


def rfc2024_snapshot(*, maps: bool) -> CpucpSnapshot:
    """The configuration of protocol.md §4.3; maps False: every map refused (empty)."""
    def mon(idx: int, mtype: int, ipm: int, rows: tuple[tuple[int, int], ...],
            lo: int, hi: int) -> MonitorSpec:
        return MonitorSpec(0xFFF, compute=mtype == 1, name=f"monitor-{idx}", ipm_ceil=ipm,
                           map_rows=rows if maps else (), min_freq=lo, max_freq=hi)
    ddr = GroupState(0, 0, (5, 0xFF, 0xFF), monitors=(
        mon(0, 0, 20000000, RFC_DDR0, 200000, 4224000),
        mon(1, 1, 0, RFC_DDR1, 200000, 4224000)))
    llcc = GroupState(1, 0, (5, 0xFF, 0xFF), monitors=(
        mon(0, 0, 20000000, RFC_LLCC0, 300000, 1067000),))
    return CpucpSnapshot((ddr, llcc), RFC_COMMON, Dialect.RFC2024, sample_ms=8, method=1,
                         running=True)
