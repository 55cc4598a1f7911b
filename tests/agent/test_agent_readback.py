"""Remote-governor readback against the emulated CPUCP (protocol.md §3.7)."""

from __future__ import annotations

import struct

from helpers_agent import Refuser

from memlat.agent.probe import check, probe
from memlat.agent.readback import RemoteGovernor, polling_interval_ms
from memlat.agent.session import make_agent, open_session
from memlat.clock import SimClock
from memlat.config import load_config
from memlat.cpucp.boot import make_cpucp_platform
from memlat.cpucp.sources import StaircaseSource
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import ParamId, QcomMessage
from memlat.scmi.status import Status
from memlat.transports.inproc import InProcessTransport


def _expected_hz(service, group) -> int:
    votes = [service.cur_freq(group.hw_type, i) for i in range(len(group.monitors))]
    if group.is_level:
        return 100 if any(votes) else 1
    return max(votes) * 1000


def test_polling_interval() -> None:
    assert [polling_interval_ms(s) for s in (1, 2, 4, 8, 9)] == [1, 1, 2, 4, 4]


def test_readback_follows_firmware_and_records_transitions() -> None:
    session = open_session(soc="x1e80100", source=StaircaseSource(hold=5))
    check(session.probe())
    gov = session.governor()
    assert gov.polling_ms == 2
    polls = 0
    for t in range(2, 301, 2):
        session.advance_to(t)
        gov.poll(t)
        polls += 1
        for bus in gov.buses:
            assert bus.device.stats.previous_freq == _expected_hz(session.service, bus.group)
            # the group vote of the firmware is the same max over monitors (no adaptive)
            vote = session.service.group_vote(bus.group.hw_type)
            if vote is not None and not bus.group.is_level:
                assert bus.device.stats.previous_freq == vote * 1000
    assert gov.gets == polls * 10  # Hamoa: 4 + 3 + 3 monitors per poll
    by_bus = {b.name: [tr for tr in gov.transitions if tr.bus == b.name] for b in gov.buses}
    assert all(len(v) >= 2 for v in by_bus.values()), by_bus
    ddr = gov.bus("ddr")
    assert ddr.device.stats.total_trans == len(by_bus["ddr"])
    assert sum(ddr.device.stats.time_in_state_ms) == 300  # initial 200 MHz is an OPP
    qos = gov.bus("ddr_qos")
    assert {tr.new_hz for tr in by_bus["ddr-qos"]} <= {1, 100}
    assert sum(qos.device.stats.time_in_state_ms) == 300 - 2  # initial_freq 0: first poll free
    text = ddr.device.trans_stat(300)
    assert text.startswith("     From  :   To\n")
    assert f"Total transition : {len(by_bus['ddr'])}\n" in text


def test_run_drives_clock_and_polls() -> None:
    session = open_session(soc="glymur", source=StaircaseSource())
    check(session.probe())
    gov = session.governor()
    changes = gov.run(session.advance_to, 100)
    assert session.now_ms == 100
    assert gov.next_poll_ms == 102
    assert changes == gov.transitions and changes
    assert all(c.time_ms % 2 == 0 for c in changes)


def _running_with_refused_gets(refused: set[tuple[int, int]]):
    cfg = load_config(soc="x1e80100")
    clock = SimClock()
    platform, service = make_cpucp_platform(cfg.hardware(), clock=clock, source=StaircaseSource())

    def refuse(_i: int, mid: int, payload: bytes) -> bool:
        if mid != QcomMessage.GET_PARAM:
            return False
        hw, mon = struct.unpack_from("<II", payload, 16)
        return struct.unpack_from("<I", payload, 12)[0] == ParamId.GET_CUR_FREQ and (
            hw, mon) in refused

    platform.register(Refuser(service, refuse, Status.INVALID_PARAMETERS))
    agent = make_agent(InProcessTransport(platform), Dialect.V8)
    check(probe(agent, cfg))
    return cfg, service, RemoteGovernor.create(agent, cfg, Dialect.V8)


def test_v8_skips_failing_monitors() -> None:
    _cfg, service, gov = _running_with_refused_gets({(0, 0), (0, 1), (0, 2)})
    service.advance(40 * 1_000_000)
    gov.poll(40)
    ddr = gov.bus("ddr")
    assert ddr.warned == {0, 1, 2}
    assert ddr.monitor_khz[:3] == [None, None, None]
    assert ddr.device.stats.previous_freq == service.cur_freq(0, 3) * 1000
    gov.poll(42)
    assert ddr.warned == {0, 1, 2} and ddr.failed_reads == 0


def test_all_monitors_failing_records_nothing() -> None:
    _cfg, service, gov = _running_with_refused_gets({(1, 0), (1, 1), (1, 2)})
    service.advance(40 * 1_000_000)
    gov.poll(40)
    llcc = gov.bus("llcc")
    assert llcc.failed_reads == 1
    assert llcc.device.stats.previous_freq == 300_000_000  # initial_freq kept
    assert not [t for t in gov.transitions if t.bus == "llcc"]


def test_whole_mhz_l3_votes_land_on_opps() -> None:
    """Issue 12: the sm8550/sm8650 L3 maps carry whole MHz (protocol.md §4.3), so the
    firmware reports e.g. 806000 kHz against the 806400 kHz OPP. read() lands each value
    as devfreq_recommended_opp() does for a lower bound (dev_pm_opp_find_freq_ceil,
    floor above the top) - the DCVS ceiling of algorithm.md §2.5 - so every recorded
    value is an OPP and trans_stat has its `*` row; bus.raw_hz keeps the firmware's."""
    for soc in ("sm8550", "sm8650"):
        session = open_session(soc=soc, source=StaircaseSource(hold=3))
        check(session.probe())
        gov = session.governor()
        start = session.now_ms
        raw_seen: set[int] = set()
        for t in range(2, 401, 2):
            session.advance_to(t)
            gov.poll(t)
            l3 = gov.bus("l3")
            assert l3.device.stats.previous_freq in l3.device.stats.freq_table
            assert l3.raw_hz is not None
            raw_seen.add(l3.raw_hz)
        table = set(gov.bus("l3").device.stats.freq_table)
        assert raw_seen - table, f"{soc}: the firmware sent only OPPs; nothing was tested"
        text = gov.bus("l3").device.trans_stat(session.now_ms)
        assert sum(line.startswith("*") for line in text.splitlines()) == 1
        assert sum(gov.bus("l3").device.stats.time_in_state_ms) == session.now_ms - start
        session.close()


def test_raw_votes_show_the_kernel_corner() -> None:
    """snap_to_opp=False: the literal v8 client (Hz = kHz x 1000); devfreq records the
    non-OPP value and trans_stat_show() returns an empty read."""
    session = open_session(soc="sm8550", source=StaircaseSource(hold=3))
    check(session.probe())
    gov = session.governor()
    gov.snap_to_opp = False
    for t in range(2, 201, 2):
        session.advance_to(t)
        gov.poll(t)
    l3 = gov.bus("l3").device
    assert l3.stats.previous_freq not in l3.stats.freq_table
    assert l3.trans_stat(session.now_ms) == ""
    session.close()
