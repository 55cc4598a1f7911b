"""ftrace text, sans I/O: parse and render the lines of the events `memlat decode` reads.

Input is text as `cat /sys/kernel/tracing/trace` prints it, as `trace-cmd report` prints
it, or the bare `scmi_msg_dump` lines memlat's own `platform serve` logs
(memlat.scmi.msgdump). Nothing here opens a file: `FtraceParser.feed()` takes lines and
returns records; `render_line()` builds lines. The event formats are the kernel's
TP_printk strings:

* include/trace/events/scmi.h, `scmi_msg_dump`:
  ``id=%d ch=%02X pt=%02X t=%s msg_id=%02X seq=%04X s=%d pyld=%s`` (Linux 6.4+; older
  kernels print the same without ``id=%d ch=%02X``, both are accepted). t is CMND, RESP,
  DLYD or NOTI (lower case for raw-mode traffic); pyld is `__print_hex_str`, plain hex.
* include/trace/events/scmi.h, `scmi_xfer_begin` / `scmi_xfer_response_wait` /
  `scmi_xfer_end` / `scmi_rx_done`: since Linux 6.1
  ``pt=%02X msg_id=%02X seq=%04X transfer_id=%X poll=%u`` (``tmo_ms=%u`` for the wait,
  ``s=%d`` for the end, ``msg_type=%u`` for rx_done; later kernels append
  ``inflight=%d``); before, ``transfer_id=%d msg_id=%u protocol_id=%u seq=%u ...`` in
  decimal. Both are read.
* include/trace/events/devfreq.h, `devfreq_frequency`:
  ``dev_name=%-30s freq=%-12lu prev_freq=%-12lu load=%-2lu`` (Hz).

The line prefix is ftrace's ``TASK-PID [CPU] FLAGS TIMESTAMP: EVENT: ``, where FLAGS
(irqs-off etc.) and a ``(TGID)`` column are optional and trace-cmd omits the flags;
timestamps are seconds with 6 (ftrace) or 9 (trace-cmd -t / ns) decimals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

SCMI_EVENTS = ("scmi_msg_dump", "scmi_xfer_begin", "scmi_xfer_response_wait", "scmi_xfer_end",
               "scmi_rx_done")
DEVFREQ_EVENT = "devfreq_frequency"

_PREFIX = re.compile(
    r"^\s*(?P<task>.+?)-(?P<pid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>[^\s\[\]]{1,8})\s+)??(?P<ts>\d+\.\d+):\s+(?P<event>\w+):\s?(?P<body>.*)$")
_MSG_DUMP = re.compile(
    r"(?:id=(?P<id>-?\d+)\s+ch=(?P<ch>[0-9A-Fa-f]{1,2})\s+)?pt=(?P<pt>[0-9A-Fa-f]{1,2})\s+"
    r"t=(?P<tag>\S{0,4})\s+msg_id=(?P<mid>[0-9A-Fa-f]{1,2})\s+seq=(?P<seq>[0-9A-Fa-f]{1,4})\s+"
    r"s=(?P<s>-?\d+)\s+pyld=(?P<pyld>[0-9A-Fa-f]*)\s*$")
_KV = re.compile(r"(\w+)=(\S*)")
TAGS = {"CMND": "command", "RESP": "response", "DLYD": "delayed", "NOTI": "notification"}


@dataclass(frozen=True, slots=True)
class Where:
    """Where a record came from: 1-based line number, and the ftrace prefix if any.

    ts_ns is None for lines without a timestamp (memlat's `platform serve` log).
    """

    lineno: int
    ts_ns: int | None = None
    task: str = ""
    pid: int = 0
    cpu: int = 0


@dataclass(frozen=True, slots=True)
class MsgDump:
    """One `scmi_msg_dump` line. kind: command, response, delayed or notification."""

    where: Where
    instance: int | None
    channel: int | None
    protocol_id: int
    tag: str
    message_id: int
    seq: int
    status: int
    payload: bytes

    @property
    def kind(self) -> str:
        """command, response, delayed or notification (raw-mode tags map the same)."""
        return TAGS.get(self.tag.upper(), "unknown")

    @property
    def raw(self) -> bool:
        """Raw-mode traffic (lower-case tag, drivers/firmware/arm_scmi/raw_mode.c)."""
        return self.tag.islower()


@dataclass(frozen=True, slots=True)
class Xfer:
    """One `scmi_xfer_begin` / `_response_wait` / `_end` / `scmi_rx_done` line.

    kind: begin, wait, end or rx_done. status (end only) is the Linux errno the transfer
    returned, not an SCMI status; timeout_ms (wait only).
    """

    where: Where
    kind: str
    transfer_id: int
    protocol_id: int
    message_id: int
    seq: int
    poll: int | None = None
    status: int | None = None
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class DevfreqFreq:
    """One `devfreq_frequency` line: a devfreq device moved from prev_freq to freq (Hz)."""

    where: Where
    dev_name: str
    freq: int
    prev_freq: int
    load: int


@dataclass(frozen=True, slots=True)
class OtherEvent:
    """A well-formed ftrace line of an event `memlat decode` does not read."""

    where: Where
    event: str


@dataclass(frozen=True, slots=True)
class Malformed:
    """A line of a known event whose fields do not parse; `why` names the field."""

    where: Where
    event: str
    why: str


Record = MsgDump | Xfer | DevfreqFreq | OtherEvent | Malformed


def _seconds_to_ns(text: str) -> int:
    return int(Decimal(text) * 1_000_000_000)


def parse_msg_dump(body: str, where: Where) -> MsgDump | Malformed:
    """The fields of a scmi_msg_dump body (the text after ``scmi_msg_dump: ``)."""
    m = _MSG_DUMP.search(body)
    if m is None:
        return Malformed(where, "scmi_msg_dump", f"not in the scmi_msg_dump format: {body!r}")
    pyld = m["pyld"]
    if len(pyld) % 2:
        return Malformed(where, "scmi_msg_dump",
                         f"pyld has an odd number of hex digits ({len(pyld)})")
    return MsgDump(where, None if m["id"] is None else int(m["id"]),
                   None if m["ch"] is None else int(m["ch"], 16), int(m["pt"], 16), m["tag"],
                   int(m["mid"], 16), int(m["seq"], 16), int(m["s"]), bytes.fromhex(pyld))


def _parse_xfer(event: str, body: str, where: Where) -> Xfer | Malformed:
    kv = dict(_KV.findall(body))
    kind = {"scmi_xfer_begin": "begin", "scmi_xfer_response_wait": "wait",
            "scmi_xfer_end": "end", "scmi_rx_done": "rx_done"}[event]
    try:
        if "pt" in kv:  # Linux 6.1+: hex protocol, message, seq and transfer id
            pt, mid, seq = int(kv["pt"], 16), int(kv["msg_id"], 16), int(kv["seq"], 16)
            tid = int(kv["transfer_id"], 16)
        else:
            pt, mid, seq = int(kv["protocol_id"]), int(kv["msg_id"]), int(kv["seq"])
            tid = int(kv["transfer_id"])
        status = kv.get("s", kv.get("status"))
        return Xfer(where, kind, tid, pt, mid, seq,
                    poll=int(kv["poll"]) if "poll" in kv else None,
                    status=int(status) if status is not None else None,
                    timeout_ms=int(kv["tmo_ms"]) if "tmo_ms" in kv else None)
    except KeyError as exc:
        return Malformed(where, event, f"field {exc.args[0]} missing")
    except ValueError as exc:
        return Malformed(where, event, f"bad number: {exc}")


def _parse_devfreq(body: str, where: Where) -> DevfreqFreq | Malformed:
    kv = dict(_KV.findall(body))
    try:
        return DevfreqFreq(where, kv["dev_name"], int(kv["freq"]), int(kv["prev_freq"]),
                           int(kv.get("load", "0")))
    except KeyError as exc:
        return Malformed(where, DEVFREQ_EVENT, f"field {exc.args[0]} missing")
    except ValueError as exc:
        return Malformed(where, DEVFREQ_EVENT, f"bad number: {exc}")


def parse_line(line: str, lineno: int) -> Record | None:
    """One line -> a record, or None for headers, comments, blanks and unrelated text."""
    text = line.rstrip("\r\n")
    if not text.strip() or text.lstrip().startswith("#"):
        return None
    m = _PREFIX.match(text)
    if m is None:
        # memlat `platform serve` logs bare scmi_msg_dump bodies (no ftrace prefix)
        if "pyld=" in text and "msg_id=" in text:
            return parse_msg_dump(text, Where(lineno))
        return None
    try:
        ts = _seconds_to_ns(m["ts"])
    except InvalidOperation:
        return None
    where = Where(lineno, ts, m["task"].strip(), int(m["pid"]), int(m["cpu"]))
    event = m["event"]
    body = m["body"]
    if event == "scmi_msg_dump":
        return parse_msg_dump(body, where)
    if event in SCMI_EVENTS:
        return _parse_xfer(event, body, where)
    if event == DEVFREQ_EVENT:
        return _parse_devfreq(body, where)
    return OtherEvent(where, event)


@dataclass
class FtraceParser:
    """Incremental parser: feed it text (any chunking), it returns complete records."""

    lineno: int = 0
    _partial: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    def feed(self, text: str) -> list[Record]:
        """Records of every complete line in `self._partial + text`."""
        data = self._partial + text
        lines = data.split("\n")
        self._partial = lines.pop()
        return [r for r in (self._one(line) for line in lines) if r is not None]

    def close(self) -> list[Record]:
        """Records of a last line without a newline."""
        rest, self._partial = self._partial, ""
        record = self._one(rest) if rest else None
        return [record] if record is not None else []

    def _one(self, line: str) -> Record | None:
        self.lineno += 1
        record = parse_line(line, self.lineno)
        if record is not None:
            name = type(record).__name__
            self.counts[name] = self.counts.get(name, 0) + 1
        return record


def parse_text(text: str) -> list[Record]:
    """Every record of a whole text."""
    parser = FtraceParser()
    return parser.feed(text) + parser.close()


# ---- rendering ------------------------------------------------------------------------

FTRACE_HEADER = """\
# tracer: nop
#
# entries-in-buffer/entries-written: {n}/{n}   #P:{ncpus}
#
#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
"""


def format_ts(ts_ns: int, digits: int = 6) -> str:
    """Seconds with `digits` decimals, as ftrace (6) or trace-cmd -t (9) print them."""
    sec, rem = divmod(ts_ns, 1_000_000_000)
    frac = rem // 10 ** (9 - digits)
    return f"{sec:5d}.{frac:0{digits}d}"


def render_line(ts_ns: int, event: str, body: str, *, task: str = "kworker/u24:3",
                pid: int = 97, cpu: int = 0, flags: str = ".....") -> str:
    """One line as /sys/kernel/tracing/trace prints it (``%16s-%-7d [%03d] flags ts:``)."""
    return f"{task:>16s}-{pid:<7d} [{cpu:03d}] {flags} {format_ts(ts_ns)}: {event}: {body}"


def msg_dump_body(*, instance: int, channel: int, protocol_id: int, tag: str,
                  message_id: int, seq: int, status: int, payload: bytes) -> str:
    """The scmi_msg_dump TP_printk text (Linux 6.4+ format)."""
    return (f"id={instance} ch={channel:02X} pt={protocol_id:02X} t={tag} "
            f"msg_id={message_id:02X} seq={seq:04X} s={status} pyld={payload.hex()}")


def xfer_body(kind: str, *, protocol_id: int, message_id: int, seq: int, transfer_id: int,
              poll: int = 0, status: int = 0, timeout_ms: int = 30) -> str:
    """scmi_xfer_begin/_response_wait/_end text, Linux 6.1+ format."""
    head = f"pt={protocol_id:02X} msg_id={message_id:02X} seq={seq:04X} transfer_id={transfer_id:X}"
    if kind == "begin":
        return f"{head} poll={poll}"
    if kind == "wait":
        return f"{head} tmo_ms={timeout_ms} poll={poll}"
    if kind == "end":
        return f"{head} s={status}"
    raise ValueError(f"unknown xfer kind {kind!r}")


def devfreq_body(dev_name: str, freq: int, prev_freq: int, load: int = 0) -> str:
    """devfreq_frequency text: ``dev_name=%-30s freq=%-12lu prev_freq=%-12lu load=%-2lu``."""
    return f"dev_name={dev_name:<30s} freq={freq:<12d} prev_freq={prev_freq:<12d} load={load:<2d}"
