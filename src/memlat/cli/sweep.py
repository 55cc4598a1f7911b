"""`memlat sweep`: a grid of memlat tunables across workloads, written as Parquet."""

from __future__ import annotations

from pathlib import Path

import typer


def _ints(text: str | None, name: str) -> list[int]:
    if not text:
        return []
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}",
                                 param_hint=name) from exc


def _floats(text: str | None, name: str) -> list[float]:
    if not text:
        return []
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise typer.BadParameter(f"expected comma-separated numbers, got {text!r}",
                                 param_hint=name) from exc


def register(app: typer.Typer) -> None:
    """Add `memlat sweep` to `app`."""

    @app.command()
    def sweep(
        soc: str = typer.Option("x1e80100", "--soc", help="SoC profile name."),
        workloads: Path | None = typer.Option(None, "--workloads",
                                              help="Workloads YAML (default: built-in suite)."),
        only: str | None = typer.Option(None, "--only", help="Comma-separated workload names."),
        ipm_ceil: str | None = typer.Option(None, "--ipm-ceil",
                                            help="IPM ceilings, e.g. 400,20000000."),
        map_scale: str | None = typer.Option(None, "--map-scale", help="Map scales, e.g. 0.5,1."),
        sample_ms: str | None = typer.Option(None, "--sample-ms", help="Sample periods, e.g. 4,8."),
        boost: str | None = typer.Option(None, "--boost",
                                         help="Boost (FREQ_SCALE_PCT), e.g. 0,50."),
        policies: str = typer.Option("memlat", "--policies", help="Comma-separated policies."),
        duration: float | None = typer.Option(None, "--duration",
                                              help="Shorten each workload to at most S seconds."),
        seed: int = typer.Option(0, "--seed", help="Seed of the workload jitter."),
        backend: str = typer.Option("processes", "--backend", help="processes or dask."),
        jobs: int | None = typer.Option(None, "--jobs", help="Workers (default: one per core)."),
        out: Path = typer.Option(Path("memlat-sweep.parquet"), "--out", help="Parquet file."),
    ) -> None:
        """Run memlat over a grid of tunables and workloads; one row per point and workload."""
        from rich.console import Console

        from memlat.analysis.sweep import Grid, SweepSpec, run_sweep, write_parquet
        from memlat.errors import MemlatError
        from memlat.sim.batch import select_workloads
        from memlat.sim.policies import POLICIES

        console = Console()
        names = tuple(p.strip() for p in policies.split(",") if p.strip())
        bad = [p for p in names if p not in POLICIES or p == "oracle"]
        if bad or not names:
            raise typer.BadParameter(f"unknown or unsupported policy {bad}",
                                     param_hint="--policies")
        grid = Grid(ipm_ceil=_ints(ipm_ceil, "--ipm-ceil"),
                    map_scale=_floats(map_scale, "--map-scale"),
                    sample_ms=_ints(sample_ms, "--sample-ms"),
                    boost_pct=_ints(boost, "--boost"))
        try:
            chosen = select_workloads(workloads, only, duration)
            spec = SweepSpec(grid, chosen, policies=names, soc=soc, seed=seed)
            with console.status(f"sweeping {len(spec.jobs())} jobs ({backend})"):
                df = run_sweep(spec, backend=backend, workers=jobs)
            write_parquet(df, out)
        except MemlatError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        console.print(df.select("workload", "policy", "ipm_ceil", "map_scale", "sample_ms",
                                "boost_pct", "slowdown", "energy_j", "edp_js"))
        console.print(f"{df.height} rows -> {out}")
