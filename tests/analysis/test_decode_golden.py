"""Golden traces decoded field by field (`memlat decode`).

* data/mixed.trace: hand-written /sys/kernel/tracing/trace text (Linux 6.4+ formats) with
  base and QCOM traffic, a SET_MONITOR refused for a mask outside its group and commands
  after it, a perf GET and a SET that timed out, an asynchronous CLOCK_RATE_SET with its
  delayed response, a perf notification, a truncated QCOM payload, and sched_switch /
  cpu_frequency / devfreq_frequency lines;
* data/x1e80100-rfc2024.report: `trace-cmd report` of an rfc2024 probe in the older
  formats (scmi_msg_dump without id/ch, decimal scmi_xfer_*), 9-digit timestamps;
* the shipped example src/memlat/examples/x1e80100-boot.trace: a full x1e80100 v8 boot
  probe with other drivers' traffic and devfreq changes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memlat.analysis.decode import decode_file
from memlat.analysis.decode.synth import board_trace
from memlat.cli import app

HERE = Path(__file__).parent
DATA = HERE / "data"
REPO = HERE.parents[1]
EXAMPLE = REPO / "src" / "memlat" / "examples" / "x1e80100-boot.trace"
EXAMPLE_COUNTERS = EXAMPLE.with_name("x1e80100-boot.counters.csv")
SNAPSHOTS = HERE / "snapshots"
runner = CliRunner()

QCOM_HEAD = "0000000054414c4d454d0000"  # ext_id 0, "MEMLAT" as algo_low/algo_high


def test_mixed_trace_messages() -> None:
    r = decode_file(DATA / "mixed.trace")
    assert [(m.kind, m.protocol, m.name, m.seq) for m in r.messages] == [
        ("command", "base", "DISCOVER_VENDOR", 0x3F),
        ("command", "qcom", "SET_PARAM", 0x40),
        ("command", "perf", "PERFORMANCE_LEVEL_GET", 0x42),
        ("command", "qcom", "SET_PARAM", 0x41),
        ("command", "qcom", "SET_PARAM", 0x43),
        ("command", "clock", "CLOCK_RATE_SET", 0x44),
        ("command", "qcom", "SET_PARAM", 0x45),
        ("notification", "perf", "PERFORMANCE_LEVEL_CHANGED", 0),
        ("command", "perf", "PERFORMANCE_LEVEL_SET", 0x46),
        ("command", "qcom", "GET_PARAM", 0x47),
        ("command", "qcom", "SET_PARAM", 0x48),
    ]
    vendor, group, perf_get, refused, ipm, clk, sample, noti, perf_set, get, trunc = r.messages
    assert vendor.response is not None and vendor.response.fields == {"name": "Qualcomm"}
    assert vendor.latency_us == 16.0 and vendor.transfer_id == 0x2A0
    assert vendor.xfer_errno == 0 and vendor.lines == [13, 14, 15, 16]

    assert group.request is not None
    assert group.request.fields == {"algo": "MEMLAT", "dialect": "v8",
                                    "param": "SET_MEM_GROUP", "param_id": 16,
                                    "cpumask": "0xff", "hw_type": "ddr"}
    assert group.status == 0 and group.latency_us == 21.0

    assert perf_get.request is not None and perf_get.request.fields == {"domain_id": 1}
    assert perf_get.response is not None
    assert perf_get.response.fields == {"performance_level": 2_995_200}

    assert refused.param == "SET_MONITOR" and refused.status == -2
    assert refused.request is not None
    assert refused.request.fields["cpumask"] == "0xf00"
    assert refused.request.fields["name"] == "mon_0"
    assert refused.request.fields["mon_type"] == "ipm"
    assert refused.xfer_errno == -22 and refused.latency_us == 18.0

    assert ipm.request is not None and ipm.request.fields["val"] == 20_000_000
    assert ipm.request.units == {"val": "instructions/miss"}

    assert clk.request is not None
    assert clk.request.fields == {"flags": "0x1", "async": True, "clock_id": 3,
                                  "rate": 19_200_000}
    assert clk.request.units == {"rate": "Hz"}
    assert clk.status == 0 and clk.latency_us == 12.0
    assert clk.delayed_status == 0 and clk.delayed_latency_us == 812.0
    assert clk.delayed is not None
    assert clk.delayed.fields == {"clock_id": 3, "rate": 19_200_000}

    assert sample.request is not None and sample.request.fields["sample_ms"] == 0
    assert sample.request.units == {"sample_ms": "ms"}

    assert noti.request is not None
    assert noti.request.fields == {"agent_id": 0, "domain_id": 0,
                                   "performance_level": 1_804_800}
    assert noti.status is None and noti.t_ns == 10_000_700_000

    assert perf_set.status is None and perf_set.xfer_errno == -110
    assert "no response in the trace" in perf_set.notes

    assert get.param == "GET_CUR_FREQ" and get.response is not None
    assert get.response.fields == {"value": 546_872} and get.response.units == {"value": "kHz"}

    assert trunc.request is not None and trunc.request.error is not None
    assert "byte offset 14" in trunc.request.error

    assert len(r.devfreq) == 1 and r.devfreq[0].freq == 547_000_000
    assert r.other_events == {"sched_switch": 1, "cpu_frequency": 1}
    assert r.dialect is not None and r.dialect.value == "v8"


def test_mixed_trace_json_one_object_per_message() -> None:
    res = runner.invoke(app, ["decode", str(DATA / "mixed.trace"), "--json"])
    assert res.exit_code == 0, res.output
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(objs) == 11
    clk = objs[5]
    assert clk["message"] == "CLOCK_RATE_SET" and clk["status_name"] == "SUCCESS"
    assert clk["delayed"]["message"] == "CLOCK_RATE_SET_COMPLETE"
    assert clk["delayed"]["fields"]["rate"] == 19_200_000
    assert clk["delayed"]["latency_us"] == 812.0
    refused = objs[3]
    assert refused["param"] == "SET_MONITOR" and refused["status_name"] == "INVALID_PARAMETERS"
    assert refused["xfer_errno"] == -22 and refused["line"] == 24
    assert objs[7]["kind"] == "notification" and "status" not in objs[7]


def test_rfc2024_report_decodes() -> None:
    r = decode_file(DATA / "x1e80100-rfc2024.report")
    assert len(r.messages) == 67 and r.dialect is not None and r.dialect.value == "rfc2024"
    qcom = r.qcom()
    assert len(qcom) == 59 and all(m.status == 0 for m in qcom)
    first = qcom[0]
    assert first.request is not None
    assert first.request.fields["algo"] == "memlat"
    assert first.request.fields["events"] == {"inst": 2, "cyc": 0, "fe_stall": 0xFF,
                                              "be_stall": 3}
    group = qcom[1]
    assert group.request is not None and group.request.fields["cpumask"] == "0x0"
    monitor = qcom[3]
    assert monitor.request is not None and monitor.request.fields["name"] == "monitor-0"
    assert [m.param for m in qcom[-2:]] == ["SAMPLE_MS", "START_TIMER"]
    # old decimal scmi_xfer_* lines still give transfer ids; ns timestamps give latency
    assert qcom[0].transfer_id == 265 and qcom[0].latency_us == 19.0
    assert qcom[0].instance is None and qcom[0].channel is None


def test_example_is_regenerated_identically() -> None:
    text, counters = board_trace()
    assert EXAMPLE.read_text() == text
    assert EXAMPLE_COUNTERS.read_text() == counters


def test_example_full_v8_boot_probe() -> None:
    r = decode_file(EXAMPLE)
    base = [m for m in r.commands(0x10)]
    assert [m.name for m in base] == ["PROTOCOL_VERSION", "PROTOCOL_ATTRIBUTES",
                                      "DISCOVER_VENDOR", "DISCOVER_SUB_VENDOR",
                                      "DISCOVER_IMPLEMENTATION_VERSION",
                                      "DISCOVER_LIST_PROTOCOLS", "DISCOVER_AGENT"]
    assert base[0].response is not None and base[0].response.fields == {"version": "2.0"}
    assert base[5].response is not None
    assert base[5].response.fields == {"num_protocols": 1, "protocols": ["0x80"],
                                       "names": ["qcom"]}
    qcom = r.qcom()
    assert len(qcom) == 70 and all(m.status == 0 and m.latency_us == 19.0 for m in qcom)
    assert [m.param for m in qcom[:4]] == ["SET_COMMON_EV_MAP", "SET_MEM_GROUP",
                                           "SET_GRP_EV_MAP", "SET_MONITOR"]
    assert qcom[0].request is not None
    assert qcom[0].request.fields["events"] == {"inst": 2, "cyc": 0, "const_cyc": 1,
                                                "fe_stall": 0xFF, "be_stall": 3}
    mapmsg = qcom[6]
    assert mapmsg.request is not None
    assert mapmsg.request.fields == {
        "algo": "MEMLAT", "dialect": "v8", "param": "MON_FREQ_MAP", "param_id": 32,
        "hw_type": "ddr", "mon_idx": 0, "nr_rows": 6,
        "rows": [[999, 547], [1440, 768], [1671, 1555], [2189, 2092], [2516, 3187],
                 [3860, 4224]]}
    assert mapmsg.request.units == {"rows": "cpu MHz->mem MHz"}
    mins = [m.request.fields["val"] for m in qcom if m.param == "SET_MIN_FREQ"
            and m.request is not None]
    assert mins == [200000] * 4 + [300000] * 3 + [0] * 3
    qos_min = [m for m in qcom if m.param == "SET_MIN_FREQ"][-1]
    assert qos_min.request is not None and qos_min.request.units == {"val": "level"}
    assert qcom[-1].param == "START_TIMER" and qcom[-1].name == "START_ACTIVITY"
    others = [m for m in r.messages if m.protocol_id in (0x13, 0x14)]
    assert [(m.kind, m.name) for m in others] == [
        ("command", "PERFORMANCE_LEVEL_SET"), ("command", "CLOCK_RATE_SET"),
        ("notification", "PERFORMANCE_LEVEL_CHANGED"), ("command", "PERFORMANCE_LEVEL_GET")]
    assert others[1].delayed is not None and others[1].delayed_latency_us == 812.0
    assert len(r.devfreq) == 128
    assert r.other_events == {"cpu_frequency": 1, "irq_handler_entry": 1, "sched_switch": 1}


def test_example_text_snapshot() -> None:
    res = runner.invoke(app, ["decode", str(EXAMPLE), "--check", "--diff"])
    assert res.exit_code == 0, res.output
    snap = SNAPSHOTS / "x1e80100-boot.txt"
    expected = snap.read_text()
    assert res.stdout.replace(str(EXAMPLE), "x1e80100-boot.trace") == expected


@pytest.mark.parametrize("text", ["", "hello\nworld\n", "# tracer: nop\n"])
def test_no_scmi_lines_is_a_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.trace"
    path.write_text(text)
    res = runner.invoke(app, ["decode", str(path)])
    assert res.exit_code == 2
    assert "no scmi_msg_dump or devfreq_frequency line found" in res.stderr
    assert str(path) in res.stderr
    missing = runner.invoke(app, ["decode", str(tmp_path / "nope.trace")])
    assert missing.exit_code == 2 and "nope.trace" in missing.stderr
