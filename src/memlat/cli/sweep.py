"""`memlat sweep`: a grid of memlat tunables across workloads, written as Parquet."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer


def _ints(text: str | None, name: str, minimum: int = 0) -> list[int]:
    if not text:
        return []
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}",
                                 param_hint=name) from exc
    bad = [v for v in values if v < minimum]
    if bad:
        raise typer.BadParameter(f"{bad[0]} is below the minimum {minimum}", param_hint=name)
    return values


def _floats(text: str | None, name: str) -> list[float]:
    if not text:
        return []
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise typer.BadParameter(f"expected comma-separated numbers, got {text!r}",
                                 param_hint=name) from exc
    bad = [v for v in values if not v > 0]
    if bad:
        raise typer.BadParameter(f"{bad[0]:g} is not a positive number", param_hint=name)
    return values


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
        out: Path = typer.Option(Path("memlat-sweep.parquet"), "--out",
                                 help="Parquet file (its folder must exist; see --force)."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing --out."),
    ) -> None:
        """Run memlat over a grid of tunables and workloads; one row per point and workload."""
        from rich.console import Console

        from memlat.analysis.sweep import BACKENDS, Grid, SweepSpec, run_sweep
        from memlat.cli._checks import input_file, output_file
        from memlat.sim.batch import select_workloads
        from memlat.sim.policies import POLICIES
        from memlat.sim.run import make_setup

        console = Console()
        if console.width < 140:  # piped or narrow: keep every column
            console = Console(width=140)
        names = tuple(p.strip() for p in policies.split(",") if p.strip())
        allowed = [p for p in POLICIES if p != "oracle"]
        bad = [p for p in names if p not in allowed]
        if bad or not names:
            raise typer.BadParameter(f"unknown or unsupported policy {', '.join(bad) or '(none)'}"
                                     f"; choose from {', '.join(allowed)}",
                                     param_hint="--policies")
        if backend not in BACKENDS:
            raise typer.BadParameter(f"unknown backend {backend!r}; choose from "
                                     f"{', '.join(BACKENDS)}", param_hint="--backend")
        grid = Grid(ipm_ceil=_ints(ipm_ceil, "--ipm-ceil", 1),
                    map_scale=_floats(map_scale, "--map-scale"),
                    sample_ms=_ints(sample_ms, "--sample-ms", 1),
                    boost_pct=_ints(boost, "--boost"))
        # every input is checked before the sweep starts
        input_file(workloads, "--workloads")
        output_file(out, "--out", force=force, inputs=(workloads,))
        chosen = select_workloads(workloads, only, duration)
        for point in grid.points():  # an unknown SoC or a bad tuning fails now
            make_setup(soc, seed=seed, tunables=point)
        spec = SweepSpec(grid, chosen, policies=names, soc=soc, seed=seed)
        with console.status(f"sweeping {len(spec.jobs())} jobs ({backend})"):
            df = run_sweep(spec, backend=backend, workers=jobs)
        # written beside and renamed: an interrupted write leaves no partial file
        tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
        try:
            df.write_parquet(tmp)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        console.print(sweep_table(df))
        console.print(f"{df.height} rows -> {out}")


_TABLE_COLUMNS = (("workload", None), ("policy", None), ("ipm_ceil", None),
                  ("map_scale", "{:g}"), ("sample_ms", None), ("boost_pct", None),
                  ("time_s", "{:.3f}"), ("slowdown", "{:.4f}"), ("energy_j", "{:.3f}"),
                  ("edp_js", "{:.3f}"), ("transitions_ddr", None),
                  ("transitions_llcc", None))


def sweep_table(df: Any) -> Any:
    """Every row and every column that matters of a sweep table, as a rich Table
    (`-` for a knob left at the profile's value)."""
    from rich.table import Table

    table = Table(title="memlat sweep", title_justify="left")
    cols = [(c, f) for c, f in _TABLE_COLUMNS if c in df.columns]
    for c, _ in cols:
        table.add_column(c.replace("transitions_", "trans "),
                         justify="left" if c in ("workload", "policy") else "right")
    for row in df.iter_rows(named=True):
        table.add_row(*("-" if row[c] is None else (f.format(row[c]) if f else str(row[c]))
                        for c, f in cols))
    return table
