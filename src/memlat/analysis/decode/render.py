"""Text output of `memlat decode`: one line per SCMI message, then the sections."""

from __future__ import annotations

import errno

from memlat.analysis.decode.session import DecodeResult, Message, status_name


def _lat(us: float | None) -> str:
    return "" if us is None else f"{us:.1f}us"


def message_line(m: Message) -> str:
    """`   2.500542  19.0us 0x009 qcom SET_PARAM [MEMLAT] SET_MEM_GROUP ... -> SUCCESS`."""
    t = "" if m.t_ns is None else f"{m.t_ns / 1e9:.6f}"
    head = f"{t:>12} {_lat(m.latency_us):>9} {m.seq:#05x} {m.protocol:<5}"
    if m.kind == "notification":
        body = f"NOTI {m.name}"
        if m.request is not None and m.request.text:
            body += f" {m.request.text}"
        return f"{head} {body}"
    req = m.request.text if m.request is not None else ""
    name = m.name if m.kind == "command" else f"{m.name} (response only)"
    if m.param is not None:
        line = f"{head} {name} {req}"
    else:
        line = f"{head} {name}" + (f" {req}" if req else "")
    status = status_name(m.status) or "(no response)"
    line += f" -> {status}"
    if m.response is not None and m.response.text:
        line += f" {m.response.text}"
    if m.t_delayed_ns is not None or m.delayed is not None:
        line += (f" | delayed {status_name(m.delayed_status)} after "
                 f"{_lat(m.delayed_latency_us) or '?'}")
        if m.delayed is not None and m.delayed.text:
            line += f" {m.delayed.text}"
    if m.xfer_errno:
        name = errno.errorcode.get(-m.xfer_errno, "?")
        line += f"  [transfer {m.transfer_id:#x} returned {m.xfer_errno} ({name})]"
    for note in m.notes:
        line += f"  [{note}]"
    for dec in (m.request, m.response, m.delayed):
        if dec is not None and dec.error:
            line += f"  [undecodable: {dec.error}]"
    return line


def summary(result: DecodeResult, source: str) -> list[str]:
    """Counts of what the file held."""
    kinds: dict[str, int] = {}
    for m in result.messages:
        kinds[m.kind] = kinds.get(m.kind, 0) + 1
    qcom = result.qcom()
    failed = [m for m in result.commands() if m.status not in (None, 0)]
    out = [f"{source}: {len(result.messages)} SCMI messages ("
           + ", ".join(f"{n} {k}" for k, n in kinds.items()) + f"), {len(qcom)} QCOM "
           f"commands ({result.dialect.value if result.dialect else 'no'} dialect), "
           f"{len(failed)} failed, {len(result.devfreq)} devfreq_frequency events"]
    if result.other_events:
        out.append("other events skipped: " + ", ".join(
            f"{k} x{v}" for k, v in sorted(result.other_events.items())))
    for bad in result.malformed:
        out.append(f"line {bad.where.lineno}: malformed {bad.event}: {bad.why}")
    return out
