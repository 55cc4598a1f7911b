"""The probe's message list against protocol.md §3.5 and §4.4 (no platform needed)."""

from __future__ import annotations

import pytest

from memlat.agent.probe import build_sequence, stop_message
from memlat.config.profiles import load_profile
from memlat.qcom.ids import ParamId, QcomMessage


def _hex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# protocol.md §3.5 "Encoded examples (v8 Hamoa, full QCOM payload, hex)".
COMMON_EV = _hex("00000000 54414c4d 454d0000 12000000 05000000 ff000000 "
                 "02000000 00000000 01000000 ff000000 03000000")
MAP_DDR_MON0 = _hex("00000000 54414c4d 454d0000 20000000 00000000 00000000 "
                    "06000000 e7032302 a0050003 87061306 8d082c08 d409730c 140f8010") + bytes(16)
SAMPLE_MS = _hex("00000000 54414c4d 454d0000 1f000000 04000000")
START_TIMER = _hex("00000000 54414c4d 454d0000 24000000")

HAMOA_ORDER = (
    ["SET_COMMON_EV_MAP"]
    + (["SET_MEM_GROUP", "SET_GRP_EV_MAP"] + ["SET_MONITOR", "IPM_CEIL", "BE_STALL_FLOOR",
                                              "MON_FREQ_MAP", "SET_MIN_FREQ",
                                              "SET_MAX_FREQ"] * 4)
    + (["SET_MEM_GROUP", "SET_GRP_EV_MAP"] + ["SET_MONITOR", "IPM_CEIL", "BE_STALL_FLOOR",
                                              "MON_FREQ_MAP", "SET_MIN_FREQ",
                                              "SET_MAX_FREQ"] * 3) * 2
    + ["SAMPLE_MS", "SET_EFFECTIVE_FREQ_METHOD", "START_TIMER"]
)


def test_hamoa_v8_sequence_matches_spec_examples() -> None:
    seq = build_sequence(load_profile("x1e80100"))
    assert len(seq) == 70
    assert [m.param for m in seq] == HAMOA_ORDER
    assert seq[0].payload == COMMON_EV
    map0 = next(m for m in seq if m.param == "MON_FREQ_MAP")
    assert (map0.group, map0.monitor) == ("ddr", "mon_0")
    assert map0.payload == MAP_DDR_MON0 and len(map0.payload) == 68
    assert seq[-3].payload == SAMPLE_MS
    assert seq[-1].payload == START_TIMER
    assert seq[-1].message_id == QcomMessage.START_ACTIVITY
    assert all(m.message_id == QcomMessage.SET_PARAM for m in seq[:-1])
    assert all(m.rx_size == 0 for m in seq)  # v8: rx_size 0 for SET/START


def test_hamoa_v8_sizes_and_zero_fill() -> None:
    seq = build_sequence(load_profile("x1e80100"))
    sizes = {"SET_COMMON_EV_MAP": 28, "SET_MEM_GROUP": 36, "SET_GRP_EV_MAP": 28,
             "SET_MONITOR": 36, "IPM_CEIL": 12, "BE_STALL_FLOOR": 12, "MON_FREQ_MAP": 52,
             "SET_MIN_FREQ": 12, "SET_MAX_FREQ": 12, "SAMPLE_MS": 4,
             "SET_EFFECTIVE_FREQ_METHOD": 4, "START_TIMER": 0}
    for m in seq:
        assert len(m.payload) == 16 + sizes[m.param], m.describe()
    group = seq[1].payload[16:]
    assert group[:4] == (0xFFF).to_bytes(4, "little") and group[16:] == bytes(20)
    mon = seq[3].payload[16:]
    assert mon[16:] == b"mon_0" + bytes(15)
    grp_ev = seq[2].payload[16:]
    assert grp_ev == _hex("03000000 00000000 05000000 ff000000 ff000000 00000000 00000000")
    qos_max = [m for m in seq if m.group == "ddr-qos" and m.param == "SET_MAX_FREQ"]
    assert [m.payload[-4:] for m in qos_max] == [(1).to_bytes(4, "little")] * 3


@pytest.mark.parametrize(("soc", "count"), [("x1e80100", 70), ("glymur", 70),
                                            ("kaanapali", 76), ("x1p42100", 70)])
def test_message_counts(soc: str, count: int) -> None:
    seq = build_sequence(load_profile(soc))
    assert len(seq) == count
    assert [m.index for m in seq] == list(range(1, count + 1))


def test_kaanapali_ddr_qos_is_hw_type_3() -> None:
    seq = build_sequence(load_profile("kaanapali"))
    qos = [m for m in seq if m.group == "ddr-qos"]
    assert qos and all(m.payload[16:20] == (3).to_bytes(4, "little") for m in qos
                       if m.param != "SET_MEM_GROUP" and m.param != "SET_GRP_EV_MAP"
                       and m.param != "SET_MONITOR")
    common = seq[0].payload[16:]
    assert common == _hex("05000000 ff000000 02000000 00000000 ff000000 ff000000 ff000000")


def test_stop_message() -> None:
    stop = stop_message("v8", 71)
    assert stop.payload == _hex("00000000 54414c4d 454d0000 25000000")
    assert stop.message_id == QcomMessage.STOP_ACTIVITY
    assert stop.param_id == ParamId.STOP_TIMER
    assert stop_message("rfc2024").rx_size == 128  # the RFC's rx_size (protocol.md §4.1)


def test_failure_labels_name_the_message() -> None:
    seq = build_sequence(load_profile("x1e80100"))
    assert seq[6].describe() == "message 7 (MON_FREQ_MAP, ddr/mon_0)"
    assert seq[0].describe() == "message 1 (SET_COMMON_EV_MAP)"
    assert seq[1].describe() == "message 2 (SET_MEM_GROUP, ddr)"
