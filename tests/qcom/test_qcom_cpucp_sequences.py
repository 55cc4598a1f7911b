"""Replaying whole probe sequences into the emulated CPUCP over SCMI (in-process SMT)."""

from __future__ import annotations

import pytest
from qcom_seq import (
    RFC_COMMON,
    hamoa_snapshot,
    hamoa_v8_sequence,
    rfc2024_sequence,
    rfc2024_snapshot,
)

from memlat.cpucp.boot import make_cpucp_platform
from memlat.cpucp.state import CpucpLimits
from memlat.governor.spec import UNUSED_EVENT, CommonEvents
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import PROTOCOL_ID, PROTOCOL_VERSION, ParamId, QcomMessage
from memlat.scmi.agent import Agent
from memlat.scmi.status import Status
from memlat.transports.inproc import InProcessTransport


def _replay(seq, **kwargs):  # type: ignore[no-untyped-def]
    platform, service = make_cpucp_platform(**kwargs)
    agent = Agent(InProcessTransport(platform))
    statuses = [agent.xfer(PROTOCOL_ID, c.message_id, c.payload, rx_size=0).status for c in seq]
    return service, statuses


def test_hamoa_v8_sequence_programs_protocol_md_3_2() -> None:
    seq = hamoa_v8_sequence()
    assert len(seq) == 70
    assert max(len(c.payload) for c in seq) == 68
    service, statuses = _replay(seq)
    assert statuses == [Status.SUCCESS] * 70
    assert service.snapshot() == hamoa_snapshot(running=True)
    assert service.sampler.running
    cfg = service.governor_config()
    assert cfg.ncpus == 12 and cfg.sample_ms == 4 and cfg.method == 1
    assert cfg.common == CommonEvents(inst=2, cyc=0, const_cyc=1, fe_stall=0xFF, be_stall=3)
    assert [g.name for g in cfg.groups] == ["ddr", "llcc", "ddr_qos"]
    assert [len(g.monitors) for g in cfg.groups] == [4, 3, 3]
    assert cfg.groups[0].monitors[3].compute and not cfg.groups[0].monitors[0].compute
    assert cfg.groups[2].is_level and not cfg.groups[0].is_level
    assert all(g.miss_event == 5 and g.wb_event == UNUSED_EVENT for g in cfg.groups)


def test_hamoa_sequence_twice_is_idempotent() -> None:
    """Re-sending the probe (e.g. after a driver reload) re-programs the same slots."""
    seq = hamoa_v8_sequence()
    service, statuses = _replay(seq + seq)
    assert set(statuses) == {Status.SUCCESS}
    assert service.snapshot() == hamoa_snapshot(running=True)


def test_rfc2024_sequence_refuses_non_ascending_maps() -> None:
    """protocol.md §4.3: the RFC tables list 2156 MHz after 2189 MHz. With strict map order
    (decisions.md §2 refusal rule) the three MON_FREQ_MAP messages get INVALID_PARAMETERS
    and everything else lands; the RFC driver only logs the failure (protocol.md §4.4)."""
    seq = rfc2024_sequence()
    assert len(seq) == 22
    service, statuses = _replay(seq)
    refused = [i + 1 for i, s in enumerate(statuses) if s != Status.SUCCESS]
    assert refused == [6, 11, 18]
    assert {statuses[i - 1] for i in refused} == {Status.INVALID_PARAMETERS}
    assert all(seq[i - 1].param == ParamId.MON_FREQ_MAP for i in refused)
    assert service.snapshot() == rfc2024_snapshot(maps=False)


def test_rfc2024_sequence_lenient_platform_holds_protocol_md_4_3() -> None:
    service, statuses = _replay(rfc2024_sequence(),
                                limits=CpucpLimits(strict_map_order=False))
    assert statuses == [Status.SUCCESS] * 22
    snap = service.snapshot()
    assert snap == rfc2024_snapshot(maps=True)
    # garbage after nr_rows in map #11 was not read: 4 rows stored
    assert len(snap.group(0).monitors[1].map_rows) == 4
    cfg = service.governor_config()
    # RFC common slots are INST, CYC, FE, BE: no constant counter (protocol.md §2.3)
    assert cfg.common == CommonEvents(inst=2, cyc=0, const_cyc=UNUSED_EVENT,
                                      fe_stall=0xFF, be_stall=0xFF)
    assert snap.common_events == RFC_COMMON and snap.common_dialect is Dialect.RFC2024
    assert cfg.sample_ms == 8 and cfg.ncpus == 12


@pytest.mark.parametrize("seed", [1, 7, 99])
def test_rfc2024_garbage_bytes_do_not_matter(seed: int) -> None:
    service, statuses = _replay(rfc2024_sequence(seed),
                                limits=CpucpLimits(strict_map_order=False))
    assert statuses == [Status.SUCCESS] * 22
    assert service.snapshot() == rfc2024_snapshot(maps=True)


def test_dialect_restricted_platforms() -> None:
    _, statuses = _replay(rfc2024_sequence(), dialect="v8")
    assert set(statuses) == {Status.NOT_SUPPORTED}
    service, statuses = _replay(hamoa_v8_sequence(), dialect=Dialect.RFC2024)
    assert set(statuses) == {Status.NOT_SUPPORTED}
    assert service.snapshot().groups == ()


def test_protocol_identity_over_scmi() -> None:
    platform, _service = make_cpucp_platform()
    agent = Agent(InProcessTransport(platform))
    assert agent.call(PROTOCOL_ID, 0x0) == PROTOCOL_VERSION.to_bytes(4, "little")
    attrs = int.from_bytes(agent.call(PROTOCOL_ID, 0x1), "little")
    assert attrs & 0xFF == 2  # both algorithm strings accepted
    assert attrs >> 8 & 0xFF >= 1  # number of agents, from the base protocol
    for msg in QcomMessage:
        reply = agent.xfer(PROTOCOL_ID, 0x2, int(msg).to_bytes(4, "little"))
        assert (reply.status, reply.values) == (Status.SUCCESS, bytes(4))
    assert agent.xfer(PROTOCOL_ID, 0x2, (0x14).to_bytes(4, "little")).status == Status.NOT_FOUND
    # DISCOVER_LIST_PROTOCOLS lists 0x80 and DISCOVER_VENDOR answers Qualcomm
    vendor = agent.call(0x10, 0x3)
    assert vendor.rstrip(b"\0") == b"Qualcomm"
    listing = agent.call(0x10, 0x6, bytes(4))
    assert 0x80 in listing[4:4 + int.from_bytes(listing[:4], "little")]
    v8_only, _ = make_cpucp_platform(dialect="v8")
    ctx_attrs = int.from_bytes(Agent(InProcessTransport(v8_only)).call(PROTOCOL_ID, 0x1),
                               "little")
    assert ctx_attrs & 0xFF == 1
