"""Kernel-format ftrace text of memlat's own traffic (golden traces, examples, tests).

`probe_trace(soc)` boots the emulated CPUCP in process, runs the agent's probe
(memlat.agent.probe: base discovery, PROTOCOL_VERSION(0x80), the QCOM sequence) and
renders every exchange as Linux would trace it (drivers/firmware/arm_scmi/driver.c
do_xfer): `scmi_xfer_begin`, the CMND `scmi_msg_dump`, `scmi_xfer_response_wait`, the
RESP dump from the interrupt handler, `scmi_xfer_end` with the errno
(scmi_to_linux_errno of the status). The reply payload is what Linux keeps: the values
after the status, clipped to the rx_size the command asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from memlat.agent.session import open_session
from memlat.analysis.decode.ftrace import (
    FTRACE_HEADER,
    msg_dump_body,
    render_line,
    xfer_body,
)
from memlat.config.model import SocConfig
from memlat.scmi.agent import Exchange
from memlat.scmi.msgdump import BASE_CHANNEL
from memlat.scmi.status import to_linux_errno

SENDER = ("kworker/u24:3", 97, 2, ".....")  # task, pid, cpu, flags of the sending thread
IRQ = ("<idle>", 0, 0, "d.h1.")  # the mailbox interrupt that delivers the reply


@dataclass
class Clock:
    """Synthetic trace time: a command every `step_ns`, replies after `latency_ns`."""

    now_ns: int = 2_500_000_000
    step_ns: int = 60_000
    latency_ns: int = 21_000
    transfer_id: int = 0x100


def exchange_lines(ex: Exchange, clock: Clock, *, instance: int = 0,
                   channel: int = BASE_CHANNEL, xfer: bool = True) -> list[str]:
    """The ftrace lines of one agent exchange (see the module docstring)."""
    t = clock.now_ns
    clock.transfer_id += 1
    tid = clock.transfer_id
    pt, mid, seq = ex.protocol_id, ex.message_id, ex.token
    task, pid, cpu, flags = SENDER
    itask, ipid, icpu, iflags = IRQ
    out = []
    if xfer:
        out.append(render_line(t, "scmi_xfer_begin", xfer_body(
            "begin", protocol_id=pt, message_id=mid, seq=seq, transfer_id=tid),
            task=task, pid=pid, cpu=cpu, flags=flags))
    out.append(render_line(t + 2_000, "scmi_msg_dump", msg_dump_body(
        instance=instance, channel=channel, protocol_id=pt, tag="CMND", message_id=mid,
        seq=seq, status=0, payload=ex.payload), task=task, pid=pid, cpu=cpu, flags=flags))
    if xfer:
        out.append(render_line(t + 3_000, "scmi_xfer_response_wait", xfer_body(
            "wait", protocol_id=pt, message_id=mid, seq=seq, transfer_id=tid),
            task=task, pid=pid, cpu=cpu, flags=flags))
    if ex.status is not None:
        out.append(render_line(t + clock.latency_ns, "scmi_msg_dump", msg_dump_body(
            instance=instance, channel=channel, protocol_id=pt, tag="RESP", message_id=mid,
            seq=seq, status=ex.status, payload=ex.reply), task=itask, pid=ipid, cpu=icpu,
            flags=iflags))
        if xfer:
            out.append(render_line(t + clock.latency_ns + 4_000, "scmi_xfer_end", xfer_body(
                "end", protocol_id=pt, message_id=mid, seq=seq, transfer_id=tid,
                status=to_linux_errno(ex.status)), task=task, pid=pid, cpu=cpu, flags=flags))
    clock.now_ns += clock.step_ns
    return out


def exchanges_trace(exchanges: Iterable[Exchange], clock: Clock | None = None, *,
                    xfer: bool = True) -> list[str]:
    """Lines of many exchanges, in order."""
    clock = clock or Clock()
    return [line for ex in exchanges for line in exchange_lines(ex, clock, xfer=xfer)]


def probe_exchanges(soc: SocConfig | str, dialect: str | None = None) -> list[Exchange]:
    """Every exchange of an in-process probe of `soc` (base discovery included)."""
    session = open_session(soc=soc, dialect=dialect)
    try:
        session.probe()
        assert session.result is not None
        return list(session.result.exchanges)
    finally:
        session.close()


def header(lines: list[str], ncpus: int = 12) -> str:
    """The /sys/kernel/tracing/trace header for `lines`."""
    return FTRACE_HEADER.format(n=len(lines), ncpus=ncpus)


def probe_trace(soc: SocConfig | str, dialect: str | None = None, *,
                clock: Clock | None = None, xfer: bool = True) -> str:
    """The whole trace text (header included) of a boot-time probe of `soc`."""
    lines = exchanges_trace(probe_exchanges(soc, dialect), clock, xfer=xfer)
    return header(lines) + "".join(line + "\n" for line in lines)
