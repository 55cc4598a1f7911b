"""The ftrace line codec of `memlat decode` against the kernel's TP_printk formats.

The regular expressions below are written from the format strings themselves
(include/trace/events/scmi.h and devfreq.h, quoted), independently of the codec, so a
rendering or parsing drift shows up here.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from memlat.analysis.decode.ftrace import (
    DevfreqFreq,
    FtraceParser,
    Malformed,
    MsgDump,
    OtherEvent,
    Xfer,
    devfreq_body,
    format_ts,
    msg_dump_body,
    parse_line,
    parse_text,
    render_line,
    xfer_body,
)
from memlat.analysis.decode.synth import probe_trace

DATA = Path(__file__).parent / "data"

# "id=%d ch=%02X pt=%02X t=%s msg_id=%02X seq=%04X s=%d pyld=%s"
KERNEL_MSG_DUMP = re.compile(r"id=-?\d+ ch=[0-9A-F]{2} pt=[0-9A-F]{2} t=(CMND|RESP|DLYD|NOTI) "
                             r"msg_id=[0-9A-F]{2} seq=[0-9A-F]{4} s=-?\d+ pyld=[0-9a-f]*$")
# "pt=%02X msg_id=%02X seq=%04X transfer_id=%X poll=%u" (+ tmo_ms=%u / s=%d)
KERNEL_XFER = re.compile(r"pt=[0-9A-F]{2} msg_id=[0-9A-F]{2} seq=[0-9A-F]{4} "
                         r"transfer_id=[0-9A-F]+ (poll=\d+|tmo_ms=\d+ poll=\d+|s=-?\d+)$")
# "dev_name=%-30s freq=%-12lu prev_freq=%-12lu load=%-2lu"
KERNEL_DEVFREQ = re.compile(r"dev_name=\S+ {0,30}\s?freq=\d+ *prev_freq=\d+ *load=\d+ ?$")
# ftrace prefix: "%16s-%-7d [%03d] flags %5lu.%06lu: "
PREFIX = re.compile(r"^ {0,16}\S+-\d+ +\[\d{3}\] [.a-zA-Z0-9]{5} +\d+\.\d{6}: (\w+): (.*)$")


def test_rendered_probe_lines_follow_the_kernel_formats() -> None:
    text = probe_trace("x1e80100")
    events = 0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = PREFIX.match(line)
        assert m, line
        event, body = m.groups()
        pattern = KERNEL_MSG_DUMP if event == "scmi_msg_dump" else KERNEL_XFER
        assert pattern.match(body), line
        events += 1
    assert events == 78 * 5  # begin, CMND, wait, RESP, end per exchange


def test_devfreq_body_is_the_kernel_format() -> None:
    body = devfreq_body("ddr", 547_000_000, 4_224_000_000, 3)
    assert KERNEL_DEVFREQ.match(body)
    assert body == ("dev_name=ddr                            freq=547000000    "
                    "prev_freq=4224000000   load=3 ")


def test_msg_dump_fields() -> None:
    line = ("          <idle>-0       [000] d.h1.    10.000320: scmi_msg_dump: id=1 ch=10 "
            "pt=80 t=RESP msg_id=10 seq=0041 s=-2 pyld=0a0b")
    rec = parse_line(line, 7)
    assert isinstance(rec, MsgDump)
    assert (rec.instance, rec.channel, rec.protocol_id, rec.tag, rec.message_id, rec.seq,
            rec.status, rec.payload) == (1, 0x10, 0x80, "RESP", 0x10, 0x41, -2, b"\x0a\x0b")
    assert (rec.where.lineno, rec.where.ts_ns, rec.where.task, rec.where.pid,
            rec.where.cpu) == (7, 10_000_320_000, "<idle>", 0, 0)
    assert rec.kind == "response" and not rec.raw


def test_prefix_variants() -> None:
    body = "pt=13 t=cmnd msg_id=07 seq=0003 s=0 pyld=01000000"  # pre-6.4, raw mode
    variants = [
        f"  kworker/u24:3-97      [002] .....     1.000001: scmi_msg_dump: {body}",
        f"  kworker/u24:3-97    (   97) [002] d..1.     1.000001: scmi_msg_dump: {body}",
        f"   kworker/u24:3-97    [002]       1.000001000: scmi_msg_dump:        {body}",
        f"Chrome IO thread-4242  [002] .....     1.000001: scmi_msg_dump: {body}",
    ]
    for text in variants:
        rec = parse_line(text, 1)
        assert isinstance(rec, MsgDump), text
        assert rec.instance is None and rec.channel is None
        assert rec.where.ts_ns == 1_000_001_000 and rec.where.cpu == 2
        assert rec.raw and rec.kind == "command" and rec.payload == b"\x01\0\0\0"
    assert parse_line(variants[3], 1).where.task == "Chrome IO thread"  # type: ignore[union-attr]


def test_serve_log_lines_have_no_timestamp() -> None:
    rec = parse_line("id=0 ch=10 pt=80 t=CMND msg_id=12 seq=0005 s=0 pyld=", 3)
    assert isinstance(rec, MsgDump) and rec.where.ts_ns is None and rec.seq == 5
    assert parse_line("serving unix:/tmp/x", 4) is None


def test_xfer_formats_old_and_new() -> None:
    new = parse_line(render_line(5_000, "scmi_xfer_end", xfer_body(
        "end", protocol_id=0x80, message_id=0x10, seq=0x3FF, transfer_id=0x2A1,
        status=-22)), 1)
    assert isinstance(new, Xfer)
    assert (new.kind, new.protocol_id, new.message_id, new.seq, new.transfer_id,
            new.status) == ("end", 0x80, 0x10, 0x3FF, 0x2A1, -22)
    old = parse_line("  kworker/0:1-42 [000] 1.5: scmi_xfer_response_wait: transfer_id=673 "
                     "msg_id=16 protocol_id=128 seq=1023 tmo_ms=30 poll=1", 2)
    assert isinstance(old, Xfer)
    assert (old.kind, old.protocol_id, old.message_id, old.seq, old.transfer_id,
            old.timeout_ms, old.poll) == ("wait", 0x80, 0x10, 1023, 673, 30, 1)


def test_malformed_lines_name_line_and_field() -> None:
    odd = parse_line("  x-1 [000] ..... 1.000000: scmi_msg_dump: id=0 ch=10 pt=80 t=CMND "
                     "msg_id=10 seq=0001 s=0 pyld=abc", 9)
    assert isinstance(odd, Malformed) and odd.where.lineno == 9 and "pyld" in odd.why
    missing = parse_line("  x-1 [000] ..... 1.000000: devfreq_frequency: dev_name=ddr "
                         "freq=1", 10)
    assert isinstance(missing, Malformed) and "prev_freq" in missing.why
    other = parse_line("  x-1 [000] ..... 1.000000: sched_switch: prev_comm=a", 11)
    assert isinstance(other, OtherEvent) and other.event == "sched_switch"
    for junk in ("", "# tracer: nop", "cpus=12", "CPU 3 is empty"):
        assert parse_line(junk, 1) is None


def test_devfreq_record() -> None:
    line = render_line(10_004_000_000, "devfreq_frequency",
                       devfreq_body("ddr-qos", 100, 1, 0))
    rec = parse_line(line, 1)
    assert isinstance(rec, DevfreqFreq)
    assert (rec.dev_name, rec.freq, rec.prev_freq, rec.load) == ("ddr-qos", 100, 1, 0)
    assert rec.where.ts_ns == 10_004_000_000


def test_format_ts() -> None:
    assert format_ts(2_500_021_999) == "    2.500021"
    assert format_ts(12_345_000_001_234, 9) == "12345.000001234"


@given(st.lists(st.integers(min_value=1, max_value=400), max_size=30))
def test_feeding_in_chunks_equals_one_parse(cuts: list[int]) -> None:
    text = (DATA / "mixed.trace").read_text()
    parser = FtraceParser()
    got = []
    pos = 0
    for cut in cuts:
        got += parser.feed(text[pos:pos + cut])
        pos += cut
    got += parser.feed(text[pos:]) + parser.close()
    assert got == parse_text(text)


def test_msg_dump_body_round_trip() -> None:
    body = msg_dump_body(instance=0, channel=0x13, protocol_id=0x13, tag="NOTI",
                         message_id=1, seq=0, status=0, payload=bytes(range(12)))
    assert KERNEL_MSG_DUMP.match(body)
    rec = parse_line(render_line(1, "scmi_msg_dump", body), 1)
    assert isinstance(rec, MsgDump) and rec.payload == bytes(range(12))
    assert rec.kind == "notification"
