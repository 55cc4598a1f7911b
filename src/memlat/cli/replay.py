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
        soc_file: Path | None = typer.Option(None, "--soc-file", help="SoC profile YAML "
                                             "(instead of --soc)."),
        perfetto: Path | None = typer.Option(None, "--perfetto", help="Also write a Perfetto "
                                             "trace (open it in ui.perfetto.dev)."),
        force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
    ) -> None:
        """Replay a counter trace through the emulated firmware governor."""
        from memlat.analysis.replay import replay
        from memlat.cli._checks import input_file, output_file
        from memlat.errors import MemlatError

        if soc_file is not None:
            soc = str(soc_file.resolve())  # load_profile reads a path as a YAML file
        input_file(trace, "--trace")
        input_file(events, "--events")
        output_file(out, "--out", force=force, inputs=(trace, events, soc_file))
        output_file(perfetto, "--perfetto", force=force, inputs=(trace, out))
        try:
            frame = replay(soc, trace, out, use_numba=numba, perf_events=events, fmt=fmt)
            if perfetto is not None:
                _write_perfetto(perfetto, soc, trace, events, numba, fmt)
        except MemlatError as exc:
            typer.echo(f"memlat replay: {exc}", err=True)
            raise typer.Exit(2) from exc
        windows = frame.height // max(1, frame["group"].n_unique())
        typer.echo(f"memlat replay: {windows} windows -> {out}", err=True)


def _write_perfetto(path: Path, soc: str, trace: Path, events: Path | None,
                    numba: bool, fmt: str) -> None:
    """--perfetto: the replay's votes and per-CPU tracks (memlat.analysis.perfetto_run)."""
    from memlat.analysis.perfetto_run import write_replay_trace
    from memlat.analysis.replay import governor_config_for_soc, group_names, required_counters
    from memlat.governor.engine import run_trace
    from memlat.traces import load_event_table, read_trace

    config = governor_config_for_soc(soc)
    counters = read_trace(trace, fmt=fmt, ncpus=config.ncpus,
                          required_counters=required_counters(config),
                          perf_events=load_event_table(events) if events else None)
    votes = run_trace(config, counters, use_numba=numba).group_votes
    write_replay_trace(path, config, counters, votes, group_names(config), Path(soc).stem)
