"""`memlat replay`: the emulated firmware's governor over a recorded trace (decisions.md §5)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add `memlat replay` to `app`."""

    @app.command("replay")
    def replay_cmd(
        soc: str = typer.Option("x1e80100", "--soc", help="SoC profile name or YAML file."),
        trace: Path = typer.Option(..., "--trace", help="Trace: CSV, Parquet or perf stat -x,"),
        out: Path = typer.Option(..., "--out", help="Output CSV: window,group,khz."),
        events: Path | None = typer.Option(None, "--events",
                                           help="YAML table extending perf event names."),
        numba: bool = typer.Option(False, "--numba", help="Use the numba kernel."),
        fmt: str = typer.Option("auto", "--format",
                                help="Trace format: auto (detected), csv, parquet, perf."),
    ) -> None:
        """Replay a counter trace through the emulated firmware governor."""
        from memlat.analysis.replay import replay
        from memlat.errors import MemlatError

        try:
            frame = replay(soc, trace, out, use_numba=numba, perf_events=events, fmt=fmt)
        except MemlatError as exc:
            typer.echo(f"memlat replay: {exc}", err=True)
            raise typer.Exit(2) from exc
        windows = frame.height // max(1, frame["group"].n_unique())
        typer.echo(f"memlat replay: {windows} windows -> {out}", err=True)
