"""`memlat trace`: convert, synthesise and check counter traces (decisions.md §3)."""

from __future__ import annotations

from pathlib import Path

import typer

# the defaults of memlat.traces.validate (not imported: keeps the CLI start-up light)
MAX_WINDOWS = 50_000_000
MAX_CPUS = 1024


def register(app: typer.Typer) -> None:
    """Add the `memlat trace` command group to `app`."""
    trace_app = typer.Typer(help="Counter traces: convert, synthesise, check.",
                            no_args_is_help=True)
    app.add_typer(trace_app, name="trace")

    def fail(command: str, exc: Exception) -> None:
        typer.echo(f"memlat trace {command}: {exc}", err=True)
        raise typer.Exit(2) from exc

    fmt_help = "Input format: auto (detected, and the reason printed), csv, parquet, perf."

    @trace_app.command("convert")
    def convert(
        src: Path = typer.Argument(..., help="CSV, Parquet or perf stat -I -x, -A output."),
        dst: Path = typer.Argument(..., help="Output: .parquet/.pq, else CSV."),
        events: Path | None = typer.Option(None, "--events",
                                           help="YAML table extending perf event names."),
        ignore_unknown: bool = typer.Option(False, "--ignore-unknown",
                                            help="Skip perf events not in the table."),
        ncpus: int | None = typer.Option(None, "--ncpus", help="Refuse CPUs >= this."),
        fmt: str = typer.Option("auto", "--format", help=fmt_help),
        max_windows: int = typer.Option(MAX_WINDOWS, "--max-windows", min=1,
                                        help="Refuse traces with more windows."),
        max_cpus: int = typer.Option(MAX_CPUS, "--max-cpus", min=1,
                                     help="Refuse CPU numbers >= this (without --ncpus)."),
        force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
    ) -> None:
        """Convert a trace between CSV, Parquet and perf stat output."""
        from memlat.cli._checks import input_file, output_file
        from memlat.errors import MemlatError
        from memlat.traces import load_event_table, load_trace, write_trace

        input_file(src, "SRC")
        input_file(events, "--events")
        output_file(dst, "DST", force=force, inputs=(src, events))
        try:
            table = load_event_table(events) if events else None
            trace, info = load_trace(src, fmt=fmt, ncpus=ncpus, perf_events=table,
                                     ignore_unknown_events=ignore_unknown,
                                     max_windows=max_windows, max_cpus=max_cpus)
            write_trace(trace, dst)
        except MemlatError as exc:
            fail("convert", exc)
        typer.echo(info.describe(), err=True)
        typer.echo(f"{trace.windows} windows x {trace.ncpus} CPUs -> {dst}", err=True)

    @trace_app.command("synth")
    def synth(
        dst: Path = typer.Argument(..., help="Output: .parquet/.pq, else CSV."),
        windows: int = typer.Option(1000, "--windows", min=1,
                                    help="Sampling windows (rows per CPU)."),
        cpus: int = typer.Option(12, "--cpus", min=1, help="CPUs per window."),
        seed: int = typer.Option(0, "--seed", help="Seed of the random generator "
                                 "(same seed, same trace)."),
        dt_us: int = typer.Option(4000, "--dt-us", min=1,
                                  help="Length of one window in microseconds."),
        idle: float = typer.Option(0.2, "--idle", min=0.0, max=1.0,
                                   help="Share of idle CPU-windows."),
        zero_miss: float = typer.Option(0.1, "--zero-miss", min=0.0, max=1.0,
                                        help="Share of busy CPU-windows with no cache "
                                        "misses (IPM undefined)."),
        wrap: float = typer.Option(0.02, "--wrap", min=0.0, max=1.0,
                                   help="Share of samples with deltas beyond 2**32."),
        force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
    ) -> None:
        """Write a seeded synthetic trace."""
        from memlat.cli._checks import output_file
        from memlat.errors import MemlatError
        from memlat.traces import synth_trace, write_trace

        output_file(dst, "DST", force=force)
        trace = synth_trace(windows, cpus, seed=seed, dt_us=dt_us, idle_frac=idle,
                            zero_miss_frac=zero_miss, wrap_frac=wrap)
        try:
            write_trace(trace, dst)
        except (MemlatError, OSError) as exc:
            fail("synth", exc)
        typer.echo(f"{windows} windows x {cpus} CPUs -> {dst}", err=True)

    @trace_app.command("check")
    def check(
        src: Path = typer.Argument(..., help="Trace file to validate."),
        ncpus: int | None = typer.Option(None, "--ncpus", help="Refuse CPUs >= this."),
        fmt: str = typer.Option("auto", "--format", help=fmt_help),
        events: Path | None = typer.Option(None, "--events",
                                           help="YAML table extending perf event names."),
        ignore_unknown: bool = typer.Option(False, "--ignore-unknown",
                                            help="Skip perf events not in the table."),
        max_windows: int = typer.Option(MAX_WINDOWS, "--max-windows", min=1,
                                        help="Refuse traces with more windows."),
        max_cpus: int = typer.Option(MAX_CPUS, "--max-cpus", min=1,
                                     help="Refuse CPU numbers >= this (without --ncpus)."),
    ) -> None:
        """Validate a trace file (streamed, nothing kept) and print its shape."""
        from memlat.cli._checks import input_file
        from memlat.errors import MemlatError
        from memlat.traces import check_trace, load_event_table

        input_file(src, "SRC")
        try:
            table = load_event_table(events) if events else None
            info = check_trace(src, fmt=fmt, ncpus=ncpus, perf_events=table,
                               ignore_unknown_events=ignore_unknown,
                               max_windows=max_windows, max_cpus=max_cpus)
        except MemlatError as exc:
            fail("check", exc)
        typer.echo(info.describe(), err=True)
        typer.echo(f"{src}: {info.windows} windows x {info.ncpus} CPUs, {info.rows} rows, ok")
