"""`memlat devfreq show`: the devfreq files Linux would show for each bus.

Boots the emulated CPUCP in-process, probes it through the agent, then advances the
simulated clock while the remote governor polls GET_CUR_FREQ (protocol.md §3.7), and
prints (or writes with --out) each bus's devfreq files: name, governor, available
frequencies, cur_freq, min/max_freq, polling_interval, timer and trans_stat.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from memlat.cpucp.sampling import CounterSource

devfreq_app = typer.Typer(help="Devfreq view of the buses driven by the emulated firmware.",
                          no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add `memlat devfreq` to `app`."""
    app.add_typer(devfreq_app, name="devfreq")


@devfreq_app.command("show")
def show(
    soc: str = typer.Option("x1e80100", "--soc", help="SoC profile name."),
    dialect: str | None = typer.Option(None, "--dialect", help="v8 or rfc2024."),
    duration_ms: int = typer.Option(200, "--duration-ms", min=0,
                                    help="Simulated platform time to run."),
    trace: Path | None = typer.Option(None, "--trace", "--workload",
                                      help="Counter trace (CSV, Parquet or perf stat -I); "
                                      "default: a synthetic CPU-frequency staircase."),
    out: Path | None = typer.Option(None, "--out", help="Also write <out>/<bus>/<file>."),
    bus: list[str] = typer.Option(None, "--bus", help="Only these buses (ddr, llcc, ...)."),
    fmt: str = typer.Option("auto", "--format",
                            help="--trace format: auto (detected), csv, parquet, perf."),
    raw: bool = typer.Option(False, "--raw-votes",
                             help="Record the firmware's values as sent (Hz = kHz x 1000), "
                             "not landed on an OPP (see docs/agent.md)."),
) -> None:
    """Probe the emulated platform, poll it for --duration-ms, print each bus's files."""
    from memlat.agent.devfreq import write_tree
    from memlat.agent.session import open_session
    from memlat.cpucp.sources import StaircaseSource, TraceSource
    from memlat.errors import MemlatError

    try:
        source: CounterSource = StaircaseSource()
        if trace is not None:
            from memlat.traces.io import read_trace

            source = TraceSource(read_trace(trace, fmt=fmt))
        session = open_session(soc=soc, dialect=dialect, source=source)
        result = session.probe()
    except MemlatError as exc:
        typer.echo(f"memlat devfreq: {exc}", err=True)
        raise typer.Exit(2) from exc
    if not result.ok:
        typer.echo(f"memlat devfreq: {result.summary()}", err=True)
        raise typer.Exit(1)
    gov = session.governor()
    gov.snap_to_opp = not raw
    start = session.now_ms
    gov.run(session.advance_to, start + duration_ms)
    now = session.now_ms
    buses = [b for b in gov.buses if not bus or b.name in bus]
    devices = [b.device for b in buses]
    for b in buses:
        dev = b.device
        # reading cur_freq issues one GET_CUR_FREQ per monitor (protocol.md §3.7)
        for fname, text in dev.files(now, cur_freq=gov.read(b)).items():
            typer.echo(f"==> /sys/class/devfreq/{dev.name}/{fname} <==")
            typer.echo(text, nl=False)
            if fname == "trans_stat" and not text:
                typer.echo(f"memlat devfreq: {dev.name}/trans_stat reads empty: previous_freq "
                           f"{dev.stats.previous_freq} Hz is not an OPP, so "
                           "devfreq_update_status() fails in trans_stat_show()", err=True)
        typer.echo("")
    if out is not None:
        write_tree(devices, out, now)
    session.close()
