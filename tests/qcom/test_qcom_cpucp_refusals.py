"""Every refusal of protocol.md §2.4 (and our documented extras): the status, and that a
refused command changes nothing."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from qcom_seq import hamoa_snapshot, hamoa_v8_sequence

from memlat.cpucp.service import CpucpLimits, CpucpService
from memlat.qcom.codec import (
    EvMapMsg,
    FreqMethod,
    GetAdaptiveCurFreq,
    MapMsg,
    NodeMsg,
    SampleMs,
    ScalarMsg,
    encode_request,
)
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import (
    ADAPTIVE_LEVEL_1,
    SET_PARAMS,
    Algorithm,
    ParamId,
    QcomMessage,
)
from memlat.scmi.header import Header
from memlat.scmi.platform import CallContext, Platform
from memlat.scmi.protocols.base_platform import make_platform
from memlat.scmi.status import Status

SET, GET = QcomMessage.SET_PARAM, QcomMessage.GET_PARAM
START, STOP = QcomMessage.START_ACTIVITY, QcomMessage.STOP_ACTIVITY
V8, RFC = Algorithm.MEMLAT, Algorithm.MEMLAT_RFC


def _send(service: CpucpService, message: int, payload: bytes) -> tuple[int, bytes]:
    """Call the handler directly (no Platform around it), so exceptions would surface."""
    ctx = CallContext(1, Platform())
    reply = service.commands()[message].handler(ctx, payload)
    return reply.status, reply.values


def _programmed(limits: CpucpLimits | None = None, *, start: bool = False) -> CpucpService:
    service = CpucpService(limits=limits)
    for cmd in hamoa_v8_sequence(start=start):
        assert _send(service, cmd.message_id, cmd.payload)[0] == Status.SUCCESS
    return service


def _refused(service: CpucpService, message: int, payload: bytes, status: Status) -> None:
    before = service.snapshot()
    got, values = _send(service, message, payload)
    assert Status(got) is status, service.refusals[-1:] if service.refusals else None
    assert values == b""
    assert service.snapshot() == before


def req(pid: int, body: bytes = b"", algo: int = V8) -> bytes:
    return encode_request(algo, pid, body)


# -- header-level ---------------------------------------------------------------------
@pytest.mark.parametrize("message", list(QcomMessage))
def test_short_header_is_protocol_error(message: QcomMessage) -> None:
    _refused(_programmed(), message, bytes(15), Status.PROTOCOL_ERROR)


@pytest.mark.parametrize("message", list(QcomMessage))
def test_unknown_algorithm_not_supported(message: QcomMessage) -> None:
    payload = encode_request(0x4D454D4C4155, ParamId.IPM_CEIL, ScalarMsg(0, 0, 5).pack())
    _refused(_programmed(), message, payload, Status.NOT_SUPPORTED)


def test_other_dialect_not_supported_on_restricted_platform() -> None:
    service = CpucpService(dialect=Dialect.V8)
    for cmd in hamoa_v8_sequence(start=False):
        _send(service, cmd.message_id, cmd.payload)
    _refused(service, SET, req(ParamId.SAMPLE_MS, SampleMs(8).pack(), RFC), Status.NOT_SUPPORTED)


@pytest.mark.parametrize("pid", [0, 3, 4, 15, ADAPTIVE_LEVEL_1, 99, 0xFFFF_FFFF])
def test_unknown_param_not_supported(pid: int) -> None:
    service = _programmed()
    for message in QcomMessage:
        _refused(service, message, req(pid, bytes(12)), Status.NOT_SUPPORTED)


@pytest.mark.parametrize(("message", "pid"), [
    (SET, ParamId.GET_CUR_FREQ), (SET, ParamId.START_TIMER), (GET, ParamId.IPM_CEIL),
    (START, ParamId.STOP_TIMER), (STOP, ParamId.START_TIMER), (START, ParamId.SAMPLE_MS),
])
def test_param_on_wrong_command_not_supported(message: QcomMessage, pid: ParamId) -> None:
    _refused(_programmed(), message, req(pid, ScalarMsg(0, 0, 4).pack()), Status.NOT_SUPPORTED)


# -- SET_MEM_GROUP ---------------------------------------------------------------------
def test_mem_group_no_free_slot_busy() -> None:
    service = _programmed(CpucpLimits(max_groups=3))
    _refused(service, SET, req(ParamId.SET_MEM_GROUP, NodeMsg(0xFFF, 3).pack()), Status.BUSY)


def test_mem_group_unknown_hw_type_invalid() -> None:
    _refused(_programmed(), SET, req(ParamId.SET_MEM_GROUP, NodeMsg(0xFFF, 7).pack()),
             Status.INVALID_PARAMETERS)


def test_mem_group_mask_shrinking_under_monitors_invalid() -> None:
    _refused(_programmed(), SET, req(ParamId.SET_MEM_GROUP, NodeMsg(0x0FF, 0).pack()),
             Status.INVALID_PARAMETERS)


# -- SET_MONITOR -----------------------------------------------------------------------
def test_monitor_unknown_group_not_found() -> None:
    _refused(_programmed(), SET, req(ParamId.SET_MONITOR, NodeMsg(0xF, 3, 0, 0, "m").pack()),
             Status.NOT_FOUND)


def test_monitor_slots_full_not_found() -> None:
    service = _programmed()
    assert _send(service, SET, req(ParamId.SET_MONITOR, NodeMsg(0xF, 0, 0, 4).pack()))[0] == 0
    _refused(service, SET, req(ParamId.SET_MONITOR, NodeMsg(0xF, 0, 0, 5).pack()),
             Status.NOT_FOUND)


def test_monitor_index_gap_invalid() -> None:
    _refused(_programmed(), SET, req(ParamId.SET_MONITOR, NodeMsg(0xF, 1, 0, 4).pack()),
             Status.INVALID_PARAMETERS)


def test_monitor_mask_outside_group_invalid() -> None:
    _refused(_programmed(), SET, req(ParamId.SET_MONITOR, NodeMsg(0x1000, 0, 0, 0).pack()),
             Status.INVALID_PARAMETERS)


def test_monitor_type_invalid() -> None:
    _refused(_programmed(), SET, req(ParamId.SET_MONITOR, NodeMsg(0xF, 0, 2, 0).pack()),
             Status.INVALID_PARAMETERS)


# -- event maps ------------------------------------------------------------------------
def test_common_ev_too_many_invalid() -> None:
    body = struct.pack("<8I", 6, 0xFF, 2, 0, 1, 0xFF, 3, 4)
    _refused(_programmed(), SET, req(ParamId.SET_COMMON_EV_MAP, body), Status.INVALID_PARAMETERS)
    # the RFC struct has 4 slots: 5 events are too many in that dialect
    body = struct.pack("<7I", 5, 0xFF, 2, 0, 1, 0xFF, 3)
    _refused(_programmed(), SET, req(ParamId.SET_COMMON_EV_MAP, body, RFC),
             Status.INVALID_PARAMETERS)


def test_common_ev_wrong_hw_type_invalid() -> None:
    _refused(_programmed(), SET, req(ParamId.SET_COMMON_EV_MAP,
                                     EvMapMsg(5, 0, (2, 0, 1, 0xFF, 3)).pack()),
             Status.INVALID_PARAMETERS)


def test_ev_unknown_counter_invalid() -> None:
    _refused(_programmed(), SET, req(ParamId.SET_COMMON_EV_MAP,
                                     EvMapMsg(5, 0xFF, (2, 0, 0x40, 0xFF, 3)).pack()),
             Status.INVALID_PARAMETERS)
    _refused(_programmed(), SET, req(ParamId.SET_GRP_EV_MAP,
                                     EvMapMsg(1, 0, (9,)).pack()), Status.INVALID_PARAMETERS)


def test_grp_ev_unknown_group_invalid() -> None:
    _refused(_programmed(), SET, req(ParamId.SET_GRP_EV_MAP,
                                     EvMapMsg(3, 3, (5, 0xFF, 0xFF)).pack()),
             Status.INVALID_PARAMETERS)


def test_grp_ev_too_many_invalid() -> None:
    _refused(_programmed(), SET, req(ParamId.SET_GRP_EV_MAP,
                                     EvMapMsg(4, 0, (5, 0xFF, 0xFF, 3)).pack()),
             Status.INVALID_PARAMETERS)


def test_ev_short_slots_invalid() -> None:
    body = struct.pack("<2I", 5, 0xFF) + bytes(3)
    _refused(_programmed(), SET, req(ParamId.SET_COMMON_EV_MAP, body), Status.INVALID_PARAMETERS)


# -- scalars ---------------------------------------------------------------------------
MONITOR_SCALARS = [ParamId.IPM_CEIL, ParamId.FE_STALL_FLOOR, ParamId.BE_STALL_FLOOR,
                   ParamId.WB_PCT, ParamId.IPM_FILTER, ParamId.FREQ_SCALE_PCT,
                   ParamId.FREQ_SCALE_CEIL_MHZ, ParamId.FREQ_SCALE_FLOOR_MHZ,
                   ParamId.SET_MIN_FREQ, ParamId.SET_MAX_FREQ]


@pytest.mark.parametrize("pid", MONITOR_SCALARS)
def test_scalar_unknown_monitor_invalid(pid: ParamId) -> None:
    service = _programmed()
    _refused(service, SET, req(pid, ScalarMsg(1, 3, 7).pack()), Status.INVALID_PARAMETERS)
    _refused(service, SET, req(pid, ScalarMsg(3, 0, 7).pack()), Status.INVALID_PARAMETERS)
    _refused(service, SET, req(pid, ScalarMsg(0, 0, 7).pack()[:8]), Status.INVALID_PARAMETERS)


@pytest.mark.parametrize("pid", MONITOR_SCALARS)
def test_scalar_sets_only_its_field(pid: ParamId) -> None:
    service = _programmed()
    before = service.snapshot()
    assert _send(service, SET, req(pid, ScalarMsg(1, 2, 4321).pack()))[0] == Status.SUCCESS
    after = service.snapshot()
    changed = [(g.hw_type, i) for g, g2 in zip(before.groups, after.groups, strict=True)
               for i, (m, m2) in enumerate(zip(g.monitors, g2.monitors, strict=True))
               if m != m2]
    assert changed == [(1, 2)]
    assert 4321 in [getattr(after.monitor(1, 2), f) for f in after.monitor(1, 2).__slots__]


@pytest.mark.parametrize("pid", [ParamId.ADAPTIVE_LOW_FREQ, ParamId.ADAPTIVE_HIGH_FREQ])
def test_adaptive_unknown_group_invalid(pid: ParamId) -> None:
    service = _programmed()
    _refused(service, SET, req(pid, ScalarMsg(3, 0, 547000).pack()), Status.INVALID_PARAMETERS)
    # mon_idx is ignored for the group knobs
    assert _send(service, SET, req(pid, ScalarMsg(0, 99, 547000).pack()))[0] == Status.SUCCESS
    grp = service.snapshot().group(0)
    assert 547000 in (grp.adaptive_low_khz, grp.adaptive_high_khz)


@pytest.mark.parametrize("ms", [0, -1, -8])
def test_sample_ms_not_positive_invalid(ms: int) -> None:
    _refused(_programmed(), SET, req(ParamId.SAMPLE_MS, SampleMs(ms).pack()),
             Status.INVALID_PARAMETERS)


@pytest.mark.parametrize("method", [2, -1, 7])
def test_freq_method_invalid(method: int) -> None:
    _refused(_programmed(), SET, req(ParamId.SET_EFFECTIVE_FREQ_METHOD,
                                     FreqMethod(method).pack()), Status.INVALID_PARAMETERS)


# -- MON_FREQ_MAP ----------------------------------------------------------------------
def test_map_unknown_monitor_invalid() -> None:
    _refused(_programmed(), SET, req(ParamId.MON_FREQ_MAP, MapMsg(2, 3, ((1, 1),)).pack()),
             Status.INVALID_PARAMETERS)


def test_map_too_many_rows_out_of_range() -> None:
    body = struct.pack("<3I", 0, 0, 11) + bytes(44)
    _refused(_programmed(), SET, req(ParamId.MON_FREQ_MAP, body), Status.OUT_OF_RANGE)
    small = _programmed(CpucpLimits(max_map_rows=6))
    _refused(small, SET, req(ParamId.MON_FREQ_MAP,
                             MapMsg(0, 0, tuple((100 * i, i) for i in range(1, 8))).pack()),
             Status.OUT_OF_RANGE)


def test_map_rows_not_ascending_invalid() -> None:
    rows = ((999, 547), (1440, 768), (1440, 1555))
    _refused(_programmed(), SET, req(ParamId.MON_FREQ_MAP, MapMsg(0, 0, rows).pack()),
             Status.INVALID_PARAMETERS)


def test_map_rows_missing_from_payload_invalid() -> None:
    body = struct.pack("<3I", 0, 0, 8) + bytes(24)  # RFC-size message claiming 8 rows
    _refused(_programmed(), SET, req(ParamId.MON_FREQ_MAP, body, RFC), Status.INVALID_PARAMETERS)


def test_map_zero_rows_accepted() -> None:
    service = _programmed()
    assert _send(service, SET, req(ParamId.MON_FREQ_MAP, MapMsg(0, 1, ()).pack()))[0] == 0
    assert service.snapshot().monitor(0, 1).map_rows == ()


# -- GET, START, STOP ------------------------------------------------------------------
def test_get_cur_freq_unknown_monitor_invalid() -> None:
    _refused(_programmed(), GET, req(ParamId.GET_CUR_FREQ, ScalarMsg(0, 4).pack()),
             Status.INVALID_PARAMETERS)
    _refused(_programmed(), GET, req(ParamId.GET_CUR_FREQ, bytes(4)), Status.INVALID_PARAMETERS)


def test_get_adaptive_unknown_group_invalid() -> None:
    _refused(_programmed(), GET, req(ParamId.GET_ADAPTIVE_CUR_FREQ,
                                     GetAdaptiveCurFreq(3).pack()), Status.INVALID_PARAMETERS)


def test_start_before_any_group_event_map_generic_error() -> None:
    service = CpucpService()
    _send(service, SET, req(ParamId.SET_MEM_GROUP, NodeMsg(0xFFF, 0).pack()))
    _refused(service, START, req(ParamId.START_TIMER), Status.GENERIC_ERROR)
    assert not service.sampler.running
    _refused(CpucpService(), START, req(ParamId.START_TIMER), Status.GENERIC_ERROR)


def test_start_when_running_and_stop_when_stopped_succeed() -> None:
    service = _programmed(start=True)
    assert service.snapshot() == hamoa_snapshot(running=True)
    assert _send(service, START, req(ParamId.START_TIMER)) == (Status.SUCCESS, b"")
    assert service.snapshot().running and service.sampler.running
    assert _send(service, STOP, req(ParamId.STOP_TIMER)) == (Status.SUCCESS, b"")
    assert service.snapshot() == hamoa_snapshot(running=False)  # config kept
    assert not service.sampler.running
    assert _send(service, STOP, req(ParamId.STOP_TIMER)) == (Status.SUCCESS, b"")
    assert service.snapshot() == hamoa_snapshot(running=False)


def test_refusals_are_logged_with_reason() -> None:
    service = _programmed()
    _send(service, SET, req(ParamId.MON_FREQ_MAP, MapMsg(0, 0, ((5, 1), (4, 2))).pack()))
    message, param, status, why = service.refusals[-1]
    assert (message, param, status) == ("SET_PARAM", "MON_FREQ_MAP", Status.INVALID_PARAMETERS)
    assert "row 1" in why


# -- fuzz ------------------------------------------------------------------------------
DOCUMENTED = {Status.SUCCESS, Status.NOT_SUPPORTED, Status.INVALID_PARAMETERS,
              Status.NOT_FOUND, Status.OUT_OF_RANGE, Status.BUSY, Status.PROTOCOL_ERROR}
PIDS = st.one_of(st.sampled_from(sorted(int(p) for p in SET_PARAMS)),
                 st.sampled_from(sorted(int(p) for p in SET_PARAMS)),
                 st.sampled_from([int(p) for p in ParamId] + [0, 40, 99]),
                 st.integers(0, 0xFFFF_FFFF))
SMALL_U32S = st.lists(st.integers(0, 12) | st.sampled_from([0xFF, 0xFFF, 0xFFFF_FFFF]),
                      max_size=20).map(lambda xs: struct.pack(f"<{len(xs)}I", *xs))
# bodies that start like real structs: hw_type / mon_idx / counts in range, then anything
STRUCTISH = st.builds(lambda a, b, c, rest: struct.pack("<3I", a, b, c) + rest,
                      st.integers(0, 4), st.integers(0, 5), st.integers(0, 12),
                      st.binary(max_size=48))
BODIES = st.one_of(st.binary(max_size=80), SMALL_U32S, STRUCTISH)
FUZZ_SERVICE = _programmed(start=True)


@given(PIDS, BODIES, st.sampled_from([V8, RFC]))
def test_any_set_payload_gets_a_documented_status(pid: int, body: bytes, algo: int) -> None:
    before = FUZZ_SERVICE.snapshot()
    status, values = _send(FUZZ_SERVICE, SET, encode_request(algo, pid, body))
    assert Status(status) in DOCUMENTED and values == b""
    if status != Status.SUCCESS:
        assert FUZZ_SERVICE.snapshot() == before


@given(st.binary(max_size=20))
def test_any_raw_payload_gets_a_status(payload: bytes) -> None:
    for message in QcomMessage:
        status, _ = _send(FUZZ_SERVICE, message, payload)
        assert Status(status) in DOCUMENTED | {Status.GENERIC_ERROR}


@given(PIDS, BODIES)
def test_any_get_payload_gets_a_documented_status(pid: int, body: bytes) -> None:
    status, values = _send(FUZZ_SERVICE, GET, encode_request(V8, pid, body))
    assert Status(status) in DOCUMENTED
    if status == Status.SUCCESS:
        assert len(values) in (4, 8)


# -- through the Platform: Platform.state() sees the CPUCP -------------------------------
def _platform_with(service: CpucpService) -> Platform:
    platform = make_platform()
    platform.register(service)
    return platform


def test_platform_state_covers_the_cpucp() -> None:
    service = _programmed()
    platform = _platform_with(service)
    before = platform.state()
    assert dict(before[2])[0x80] == service.snapshot()
    command = Header(QcomMessage.SET_PARAM, 0x80, 3).to_bytes() + req(
        ParamId.SAMPLE_MS, SampleMs(7).pack())
    reply = platform.handle_bytes(command)
    assert reply is not None and struct.unpack_from("<i", reply, 4)[0] == Status.SUCCESS
    assert platform.state() != before  # a committed SET is visible to Platform.state()


FUZZ_PLATFORM = _platform_with(_programmed(start=True))
QCOM_IDS = st.sampled_from([int(m) for m in QcomMessage] + [0, 1, 2, 0x7F])


@given(QCOM_IDS, st.integers(0, 15), PIDS, BODIES, st.sampled_from([V8, RFC]),
       st.binary(max_size=130))
def test_refused_qcom_commands_change_no_platform_state(
        message_id: int, reserved: int, pid: int, body: bytes, algo: int, raw: bytes) -> None:
    header = Header(message_id, 0x80, 1, reserved=reserved).to_bytes()
    for payload in (encode_request(algo, pid, body), raw):
        before = FUZZ_PLATFORM.state()
        reply = FUZZ_PLATFORM.handle_bytes(header + payload)
        assert reply is not None and reply[:4] == header
        status = struct.unpack_from("<i", reply, 4)[0]
        if reserved or len(payload) > FUZZ_PLATFORM.max_msg_size:
            assert status == Status.PROTOCOL_ERROR
        if status != Status.SUCCESS:
            assert len(reply) == 8 and FUZZ_PLATFORM.state() == before
