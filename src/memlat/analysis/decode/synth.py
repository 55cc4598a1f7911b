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
from memlat.analysis.decode.devfreq import devfreq_events_for_votes
from memlat.analysis.decode.ftrace import (
    FTRACE_HEADER,
    devfreq_body,
    msg_dump_body,
    render_line,
    xfer_body,
)
from memlat.config.model import SocConfig
from memlat.config.profiles import load_profile
from memlat.qcom.dialect import ErrorPolicy
from memlat.scmi.agent import Exchange
from memlat.scmi.msgdump import BASE_CHANNEL
from memlat.scmi.status import to_linux_errno
from memlat.traces import synth_trace, trace_to_frame

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


def probe_exchanges(soc: SocConfig | str, dialect: str | None = None, *,
                    on_error: ErrorPolicy | None = None) -> list[Exchange]:
    """Every exchange of an in-process probe of `soc` (base discovery included);
    on_error: the probe's policy (None: the dialect's default)."""
    session = open_session(soc=soc, dialect=dialect)
    try:
        session.probe(on_error=on_error)
        assert session.result is not None
        return list(session.result.exchanges)
    finally:
        session.close()


def header(lines: list[str], ncpus: int = 12) -> str:
    """The /sys/kernel/tracing/trace header for `lines`."""
    return FTRACE_HEADER.format(n=len(lines), ncpus=ncpus)


def probe_trace(soc: SocConfig | str, dialect: str | None = None, *,
                clock: Clock | None = None, xfer: bool = True,
                on_error: ErrorPolicy | None = None) -> str:
    """The whole trace text (header included) of a boot-time probe of `soc`."""
    lines = exchanges_trace(probe_exchanges(soc, dialect, on_error=on_error), clock, xfer=xfer)
    return header(lines) + "".join(line + "\n" for line in lines)


# ---- the shipped example: a boot with other drivers' traffic and devfreq changes ----------

def _other_traffic(t0_ns: int) -> list[tuple[int, str]]:
    """Perf and clock traffic of other drivers (cpufreq, a clock consumer), a delayed
    response, a notification and unrelated events, at fixed times after t0_ns."""
    task = ("cpufreq-scmi", 211, 4, ".....")
    irq = IRQ

    def dump(t: int, who: tuple[str, int, int, str], pt: int, tag: str, mid: int, seq: int,
             status: int, payload: bytes) -> tuple[int, str]:
        return t, render_line(t, "scmi_msg_dump", msg_dump_body(
            instance=0, channel=pt, protocol_id=pt, tag=tag, message_id=mid, seq=seq,
            status=status, payload=payload), task=who[0], pid=who[1], cpu=who[2], flags=who[3])

    def other(t: int, event: str, body: str, cpu: int = 5) -> tuple[int, str]:
        return t, render_line(t, event, body, task="kworker/5:1", pid=120, cpu=cpu)

    u32 = lambda *v: b"".join(x.to_bytes(4, "little") for x in v)  # noqa: E731
    return [
        other(t0_ns + 10_000, "sched_switch", "prev_comm=swapper/5 prev_pid=0 prev_prio=120 "
              "prev_state=R ==> next_comm=kworker/5:1 next_pid=120 next_prio=120"),
        # cpufreq sets a performance level: PERFORMANCE_LEVEL_SET(domain 1, 2995200 kHz)
        dump(t0_ns + 545_000, task, 0x13, "CMND", 0x07, 0x031, 0, u32(1, 2_995_200)),
        dump(t0_ns + 557_000, irq, 0x13, "RESP", 0x07, 0x031, 0, b""),
        other(t0_ns + 700_000, "cpu_frequency", "state=2995200 cpu_id=4", cpu=4),
        # an asynchronous CLOCK_RATE_SET(clock 3, 19.2 MHz): RESP now, DLYD when done
        dump(t0_ns + 1_003_000, task, 0x14, "CMND", 0x05, 0x032, 0, u32(1, 3, 19_200_000, 0)),
        dump(t0_ns + 1_015_000, irq, 0x14, "RESP", 0x05, 0x032, 0, b""),
        # the firmware notifies a level change it made on domain 0
        dump(t0_ns + 1_500_000, irq, 0x13, "NOTI", 0x01, 0x000, 0, u32(0, 0, 1_804_800)),
        dump(t0_ns + 1_815_000, irq, 0x14, "DLYD", 0x05, 0x032, 0, u32(3, 19_200_000, 0)),
        dump(t0_ns + 2_600_000, task, 0x13, "CMND", 0x08, 0x033, 0, u32(1)),
        dump(t0_ns + 2_614_000, irq, 0x13, "RESP", 0x08, 0x033, 0, u32(2_995_200)),
        other(t0_ns + 3_000_000, "irq_handler_entry", "irq=17 name=mbox-cpucp"),
    ]


def board_trace(soc: str = "x1e80100", *, windows: int = 100, seed: int = 7
                ) -> tuple[str, str]:
    """(ftrace text, counter-trace CSV text) of a synthetic board boot: the probe of
    `soc`, other drivers' perf/clock traffic interleaved, unrelated events, then the
    devfreq_frequency changes memlat's governor makes on a seeded counter trace that
    starts when the START_TIMER reply arrives. Deterministic."""

    cfg = load_profile(soc)
    clock = Clock()
    t0 = clock.now_ns
    exchanges = probe_exchanges(cfg)
    timed: list[tuple[int, str]] = []
    for ex in exchanges:
        for line in exchange_lines(ex, clock):
            timed.append((_line_ts(line), line))
    start_ns = clock.now_ns - clock.step_ns + clock.latency_ns  # the START_TIMER reply
    timed += _other_traffic(t0)
    counters = synth_trace(windows, cfg.ncpus, seed=seed, dt_us=cfg.sample_ms * 1000,
                           wrap_frac=0.0)
    for t, dev, freq, prev in devfreq_events_for_votes(cfg, counters, start_ns):
        timed.append((t, render_line(t, "devfreq_frequency", devfreq_body(dev, freq, prev),
                                     task="kworker/u25:0", pid=88, cpu=1)))
    timed.sort(key=lambda tl: tl[0])
    lines = [line for _, line in timed]
    return header(lines) + "".join(f"{line}\n" for line in lines), \
        trace_to_frame(counters).write_csv()


def _line_ts(line: str) -> int:
    """The timestamp of a line render_line made."""
    secs = line.split(": ", 1)[0].rsplit(" ", 1)[-1]
    whole, frac = secs.split(".")
    return int(whole) * 1_000_000_000 + int(frac) * 1_000
