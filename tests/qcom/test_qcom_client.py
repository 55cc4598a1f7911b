"""Agent-side rules of qcom_scmi_common_xfer (protocol.md §2.2), against the emulator."""

from __future__ import annotations

import errno

import pytest
from qcom_seq import hamoa_v8_sequence

from memlat.cpucp.boot import make_cpucp_platform
from memlat.qcom.client import QcomClient, QcomClientError
from memlat.qcom.codec import MapMsg, ScalarMsg, decode_request
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import PROTOCOL_ID, Algorithm, ParamId, QcomMessage
from memlat.scmi.agent import Agent
from memlat.scmi.status import ScmiStatusError, Status
from memlat.transports.inproc import InProcessTransport


@pytest.fixture
def client() -> QcomClient:
    platform, _ = make_cpucp_platform()
    agent = Agent(InProcessTransport(platform))
    for cmd in hamoa_v8_sequence(start=False):
        agent.call(PROTOCOL_ID, cmd.message_id, cmd.payload)
    return QcomClient(agent)


def test_set_param_sends_header_and_body(client: QcomClient) -> None:
    client.set_param(ParamId.IPM_CEIL, ScalarMsg(0, 1, 123).pack())
    sent = client.agent.log[-1]
    assert (sent.protocol_id, sent.message_id, sent.status) == (0x80, 0x10, 0)
    header, body = decode_request(sent.payload)
    assert header.algo == Algorithm.MEMLAT and header.param_id == ParamId.IPM_CEIL
    assert ScalarMsg.unpack(body) == ScalarMsg(0, 1, 123)


def test_rx_size_larger_than_body_refused_before_sending(client: QcomClient) -> None:
    sent = len(client.agent.log)
    with pytest.raises(QcomClientError) as info:
        client.get_param(ParamId.GET_CUR_FREQ, bytes(2), 4)
    assert info.value.errno == -errno.EINVAL and "rx_size 4" in str(info.value)
    assert len(client.agent.log) == sent


def test_reply_longer_than_body_is_eproto(client: QcomClient) -> None:
    with pytest.raises(QcomClientError) as info:
        client.get_param(ParamId.GET_TIMESTAMP, bytes(4), 4)  # 8-byte reply
    assert info.value.errno == -errno.EPROTO


def test_reply_shorter_than_rx_size_is_eproto(client: QcomClient) -> None:
    with pytest.raises(QcomClientError) as info:
        client.get_param(ParamId.GET_CUR_FREQ, ScalarMsg(0, 0).pack(), 8)  # 4-byte reply
    assert info.value.errno == -errno.EPROTO


def test_get_returns_exactly_rx_size(client: QcomClient) -> None:
    raw = client.get_param(ParamId.GET_CUR_FREQ, ScalarMsg(0, 0).pack(), 4)
    assert raw == (200000).to_bytes(4, "little")


def test_algorithm_allow_list(client: QcomClient) -> None:
    sent = len(client.agent.log)
    with pytest.raises(QcomClientError) as info:
        client.set_param(ParamId.SAMPLE_MS, bytes(4), algo=Algorithm.MEMLAT_RFC)
    assert info.value.errno == -errno.EINVAL and len(client.agent.log) == sent
    lenient = QcomClient(client.agent, allowed=frozenset(Algorithm))
    lenient.set_param(ParamId.SAMPLE_MS, (8).to_bytes(4, "little"), algo=Algorithm.MEMLAT_RFC)
    assert decode_request(client.agent.log[-1].payload)[0].algo == Algorithm.MEMLAT_RFC


def test_status_errors_name_message_and_param(client: QcomClient) -> None:
    with pytest.raises(ScmiStatusError) as info:
        client.set_param(ParamId.MON_FREQ_MAP, MapMsg(0, 0, ((5, 1), (4, 1))).pack())
    assert info.value.status == Status.INVALID_PARAMETERS
    assert "SET_PARAM MON_FREQ_MAP" in str(info.value)
    with pytest.raises(ScmiStatusError) as info:
        client.get_cur_freq(0, 9)
    assert "GET_PARAM GET_CUR_FREQ" in str(info.value)
    with pytest.raises(ScmiStatusError, match="START_ACTIVITY STOP_TIMER"):
        client.start_activity(ParamId.STOP_TIMER)


def test_start_stop_and_rfc_dialect_client() -> None:
    platform, service = make_cpucp_platform()
    agent = Agent(InProcessTransport(platform))
    rfc = QcomClient(agent, Dialect.RFC2024)
    with pytest.raises(ScmiStatusError) as info:
        rfc.start_activity()
    assert info.value.status == Status.GENERIC_ERROR
    for cmd in hamoa_v8_sequence(start=False):
        agent.call(PROTOCOL_ID, cmd.message_id, cmd.payload)
    rfc.start_activity()
    assert service.snapshot().running
    rfc.stop_activity()
    assert not service.snapshot().running
    assert agent.log[-1].message_id == QcomMessage.STOP_ACTIVITY
    assert decode_request(agent.log[-1].payload)[0].algo == Algorithm.MEMLAT_RFC
