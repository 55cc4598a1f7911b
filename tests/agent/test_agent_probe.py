"""The probe against the emulated CPUCP: success, the RFC DT, failures at every position."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from helpers_agent import Refuser

from memlat.agent.probe import ProbeError, build_sequence, check, iter_qcom, probe
from memlat.agent.session import make_agent
from memlat.config import load_config
from memlat.cpucp.boot import make_cpucp_platform
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import PROTOCOL_ID, ParamId, QcomMessage
from memlat.scmi.platform import Reply
from memlat.scmi.status import Status
from memlat.transports.inproc import InProcessTransport

REPO = Path(__file__).resolve().parents[2]
RFC_DTS = REPO / "src" / "memlat" / "examples" / "x1e80100-memlat-rfc.dts"


def _setup(soc: str = "x1e80100", dialect: str | None = None, dts: str | None = None,
           refuse=None, status: Status = Status.GENERIC_ERROR):
    cfg = load_config(soc=None if dts else soc, dts=dts, dialect=dialect)
    platform, service = make_cpucp_platform(cfg.hardware())
    if refuse is not None:
        platform.register(Refuser(service, refuse, status))
    d = Dialect(dialect or cfg.dialect)
    agent = make_agent(InProcessTransport(platform), d)
    return cfg, d, agent, service


@pytest.mark.parametrize(("soc", "count"), [("x1e80100", 70), ("glymur", 70),
                                            ("kaanapali", 76)])
def test_probe_succeeds_and_runs(soc: str, count: int) -> None:
    cfg, d, agent, service = _setup(soc)
    result = check(probe(agent, cfg, d))
    qcom = list(iter_qcom(result.exchanges))
    assert len(qcom) == len(result.sequence) == count
    assert all(ex.status == Status.SUCCESS for ex in qcom)
    assert [ex.payload for ex in qcom] == [m.payload for m in build_sequence(cfg, d)]
    assert result.version == 0x10000
    assert result.state == "running" and service.snapshot().running
    # discovery and PROTOCOL_VERSION(0x80) come first
    first_qcom = result.exchanges.index(qcom[0])
    assert result.exchanges[0].protocol_id == 0x10
    prelude = result.exchanges[first_qcom - 1]
    assert (prelude.protocol_id, prelude.message_id) == (PROTOCOL_ID, 0)
    assert struct.unpack("<I", prelude.reply)[0] == 0x10000


def test_rfc_dt_sends_22_commands_and_firmware_refuses_unsorted_maps() -> None:
    cfg, d, agent, service = _setup(dialect="rfc2024", dts=str(RFC_DTS))
    result = probe(agent, cfg, d)
    qcom = list(iter_qcom(result.exchanges))
    assert len(qcom) == 22
    params = [m.param_id for m in result.messages]
    assert params == [18, 16, 19, 17, 23, 32, 33, 34, 17, 23, 32, 33, 34,
                      16, 19, 17, 23, 32, 33, 34, 31, 36]
    assert [ex.message_id for ex in qcom] == [0x10] * 21 + [0x12]
    # protocol.md §4.4 encoded examples (zero-filled where the RFC leaked garbage)
    assert qcom[0].payload.hex() == ("000000006d656d6c6174000012000000"
                                     "04000000ff00000002000000000000" "00ff000000ff000000")
    assert qcom[5].payload[16:].hex() == ("000000000000000006000000e7032302a0050003"
                                          "870613068d082c086c08730c140f8010")
    assert qcom[5].payload[:16].hex() == "000000006d656d6c6174000020000000"
    assert all(m.rx_size == 128 for m in result.messages)
    # the non-ascending maps (2189 then 2156 MHz) are refused: messages 6, 11, 18
    assert [(f.message.index, f.status) for f in result.failures] == [
        (6, Status.INVALID_PARAMETERS), (11, Status.INVALID_PARAMETERS),
        (18, Status.INVALID_PARAMETERS)]
    assert "message 6 (MON_FREQ_MAP, ddr/monitor-0)" in result.failures[0].describe()
    # RFC policy: log and continue; START_TIMER succeeds, the loop runs
    assert result.state == "running" and service.snapshot().running
    assert not result.ok
    with pytest.raises(ProbeError, match="message 6"):
        check(result)


def test_rfc_abort_policy_stops_at_first_refusal() -> None:
    cfg, d, agent, service = _setup(dialect="rfc2024", dts=str(RFC_DTS))
    result = probe(agent, cfg, d, on_error="abort")
    assert len(result.sequence) == 6
    assert result.state == "not-started" and not service.snapshot().running


@pytest.mark.parametrize("soc", ["x1e80100", "kaanapali"])
def test_refusal_at_every_position_leaves_platform_stopped(soc: str) -> None:
    n = len(build_sequence(load_config(soc=soc)))
    for k in range(1, n + 1):
        cfg, d, agent, service = _setup(soc, refuse=lambda i, _m, _p, k=k: i == k)
        result = probe(agent, cfg, d)
        failure = result.failure
        assert failure is not None and failure.message.index == k, k
        assert failure.status == Status.GENERIC_ERROR
        assert f"message {k} (" in result.summary()
        assert not service.snapshot().running, k
        qcom = list(iter_qcom(result.exchanges))
        if k < n:
            assert len(qcom) == k and result.state == "not-started"
        else:  # START_TIMER refused: the agent still sends STOP_TIMER
            assert len(qcom) == n + 1 and result.state == "stopped"
            assert qcom[-1].message_id == QcomMessage.STOP_ACTIVITY
            assert qcom[-1].payload[12:16] == struct.pack("<I", ParamId.STOP_TIMER)


class StartsThenFails(Refuser):
    """Runs every command, but answers START_ACTIVITY with HARDWARE_ERROR afterwards."""

    def _wrap(self, mid, handler):
        def call(ctx, payload):
            reply = handler(ctx, payload)
            if mid == QcomMessage.START_ACTIVITY:
                return Reply.error(Status.HARDWARE_ERROR)
            return reply

        return call


def test_start_that_runs_but_reports_failure_is_stopped() -> None:
    cfg = load_config(soc="x1e80100")
    platform, service = make_cpucp_platform(cfg.hardware())
    platform.register(StartsThenFails(service, lambda *_: False))
    agent = make_agent(InProcessTransport(platform), Dialect.V8)
    result = probe(agent, cfg, Dialect.V8)
    assert result.failure is not None and result.failure.message.param == "START_TIMER"
    assert result.failure.status == Status.HARDWARE_ERROR
    assert result.state == "stopped" and not service.snapshot().running


def test_version_mismatch_sends_no_qcom_command() -> None:
    cfg, d, agent, service = _setup()
    service.version = 0x20000
    result = probe(agent, cfg, d)
    assert list(iter_qcom(result.exchanges)) == []
    assert result.state == "unprogrammed" and not result.ok
    assert "version 0x20000" in result.summary()


class SilentAt(InProcessTransport):
    """Loses the reply to the k-th command it carries (the platform still ran it)."""

    def __init__(self, platform, k: int):
        super().__init__(platform)
        self.k = k
        self.sent = 0

    def send(self, message: bytes) -> None:
        self.sent += 1
        super().send(message)

    def receive(self, timeout_s: float):
        if self.sent == self.k:
            self._reply_ready = False
            return None
        return super().receive(timeout_s)


def test_transport_timeout_names_the_message() -> None:
    cfg = load_config(soc="x1e80100")
    platform, service = make_cpucp_platform(cfg.hardware())
    probe_len = len(build_sequence(cfg))
    # find how many commands discovery sends, then lose the reply to QCOM message 5
    dry = make_agent(InProcessTransport(make_cpucp_platform(cfg.hardware())[0]), Dialect.V8)
    prelude = len(probe(dry, cfg).exchanges) - probe_len
    agent = make_agent(SilentAt(platform, prelude + 5), Dialect.V8)
    agent.timeout_s = 0.001
    result = probe(agent, cfg)
    failure = result.failure
    assert failure is not None and failure.message.index == 5 and failure.status is None
    assert "no reply" in failure.describe() and "IPM_CEIL, ddr/mon_0" in failure.describe()
    assert result.state == "not-started" and not service.snapshot().running
