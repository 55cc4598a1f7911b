"""`memlat run`: the main job (decisions.md §5).

Boots the emulated CPUCP platform, probes it through the agent over SCMI (inside the
`memlat` policy), simulates every policy on every workload closed-loop, prints a summary
table and writes the report folder (results.json, PNG plots, trans_stat per bus).
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import typer

from memlat.sim.closed_loop import DEFAULT_ORACLE_BUDGET, POLICIES


def _parse_policies(text: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in names if p not in POLICIES]
    if bad or not names:
        raise typer.BadParameter(f"unknown policy {', '.join(bad) or '(none)'}; "
                                 f"choose from {', '.join(POLICIES)}", param_hint="--policies")
    return names


def reproduce_command(*, soc: str, workloads: Path | None, policies: tuple[str, ...],
                      out: Path, seed: int, duration: float | None, only: str | None,
                      oracle_budget: float, memlat_backend: str) -> str:
    """The `memlat run` command line that reproduces a report (every setting explicit)."""
    args = ["memlat", "run", "--soc", soc, "--policies", ",".join(policies),
            "--seed", str(seed), "--oracle-budget", repr(oracle_budget),
            "--memlat-backend", memlat_backend]
    if workloads is not None:
        args += ["--workloads", str(workloads)]
    if only:
        args += ["--only", only]
    if duration is not None:
        args += ["--duration", repr(duration)]
    args += ["--out", str(out)]
    return shlex.join(args)


def register(app: typer.Typer) -> None:
    """Add `memlat run` to `app`."""

    @app.command()
    def run(
        soc: str = typer.Option("x1e80100", "--soc", help="SoC profile name."),
        workloads: Path | None = typer.Option(
            None, "--workloads", help="Workloads YAML (default: the built-in suite)."),
        policies: str = typer.Option(",".join(POLICIES), "--policies",
                                     help=f"Comma-separated policies: {', '.join(POLICIES)}."),
        out: Path = typer.Option(Path("memlat-report"), "--out",
                                 help="Report folder (new or empty; see --force)."),
        force: bool = typer.Option(False, "--force", help="Replace the report memlat wrote "
                                   "in --out before (only the files it listed)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the workload jitter."),
        duration: float | None = typer.Option(
            None, "--duration", min=0.001, help="Shorten each workload to at most S seconds "
            "(nominal, phases scaled in proportion)."),
        only: str | None = typer.Option(None, "--only",
                                        help="Comma-separated workload names to run."),
        jobs: int | None = typer.Option(None, "--jobs", min=1, help="Worker processes "
                                        "(default: one per core)."),
        oracle_budget: float = typer.Option(DEFAULT_ORACLE_BUDGET, "--oracle-budget", min=0.0,
                                            help="Oracle slowdown budget (0.05 = 5 %)."),
        memlat_backend: str = typer.Option(
            "cpucp", "--memlat-backend",
            help="cpucp (the SCMI-programmed emulated firmware) or reference (fallback)."),
    ) -> None:
        """Simulate every policy on every workload; print a table; write the report."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from memlat.analysis.outdir import check_output_folder
        from memlat.analysis.report import REPORT_PATTERNS, write_report
        from memlat.cli._checks import input_file
        from memlat.sim.closed_loop import make_setup
        from memlat.sim.runner import Job, run_jobs, select_workloads

        console = Console()
        if console.width < 132:  # piped or narrow: keep every column readable
            console = Console(width=132)
        # every input is checked before the simulation starts
        names = _parse_policies(policies)
        if memlat_backend not in ("cpucp", "reference"):
            raise typer.BadParameter("must be cpucp or reference", param_hint="--memlat-backend")
        input_file(workloads, "--workloads")
        check_output_folder(out, force=force, patterns=REPORT_PATTERNS)
        chosen = select_workloads(workloads, only, duration)
        setup = make_setup(soc, seed=seed)
        job_list = [Job(w, names, soc=soc, seed=seed, memlat_backend=memlat_backend,
                        oracle_budget=oracle_budget) for w in chosen]
        started = time.perf_counter()
        with Progress(TextColumn("[bold]simulating"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} workloads"),
                      TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console, transient=False) as progress:
            task = progress.add_task("", total=len(job_list))

            def done(i: int, job: Job) -> None:
                progress.update(task, advance=1, description=job.workload.name)

            outputs = run_jobs(job_list, workers=jobs, on_done=done)
        elapsed = time.perf_counter() - started
        results = [r for res, _ in outputs for r in res]
        frontiers = {job.workload.name: fr for job, (_, fr) in zip(job_list, outputs,
                                                                  strict=True) if fr}
        command = reproduce_command(soc=soc, workloads=workloads, policies=names, out=out,
                                    seed=seed, duration=duration, only=only,
                                    oracle_budget=oracle_budget,
                                    memlat_backend=memlat_backend)
        settings = {"soc": soc, "seed": seed, "policies": list(names),
                    "workloads": [w.name for w in chosen], "duration_s": duration,
                    "oracle_budget": oracle_budget, "memlat_backend": memlat_backend,
                    "sample_ms": setup.soc.sample_ms, "elapsed_s": round(elapsed, 3),
                    "command": command}
        paths = write_report(out, results, frontiers=frontiers,
                             ladders={"ddr": setup.ladders.ddr, "llcc": setup.ladders.llcc},
                             sample_ms=setup.soc.sample_ms, settings=settings, force=force)
        if "memlat" in names and memlat_backend == "cpucp":
            console.print(f"memlat: an emulated CPUCP booted per workload and programmed by "
                          f"the agent over SCMI ({setup.soc.dialect}, "
                          f"{setup.soc.command_count()} QCOM commands, in-process SMT)")
        _print_tables(console, results)
        console.print(f"report: {out / 'index.html'} ({len(paths)} files) in {elapsed:.1f} s")


def _print_tables(console: object, results: list) -> None:
    """One table per workload: time, slowdown, energy per bus and CPUs, EDP, transitions."""
    from rich.table import Table

    for workload in dict.fromkeys(r.workload for r in results):
        table = Table(title=f"{workload}", title_justify="left")
        for col in ("policy", "time s", "slowdown", "E cpu J", "E ddr J", "E llcc J",
                    "E total J", "EDP J*s", "trans ddr", "trans llcc", "trans qos"):
            table.add_column(col, justify="left" if col == "policy" else "right")
        for r in results:
            if r.workload != workload:
                continue
            sd = "-" if r.slowdown is None else f"{r.slowdown:.4f}"
            table.add_row(r.policy, f"{r.time_s:.3f}", sd, f"{r.e_cpu_j:.3f}",
                          f"{r.e_ddr_j:.3f}", f"{r.e_llcc_j:.3f}", f"{r.energy_j:.3f}",
                          f"{r.edp:.3f}", str(r.transitions.get("ddr", 0)),
                          str(r.transitions.get("llcc", 0)), str(r.transitions.get("ddr_qos", 0)))
        console.print(table)  # type: ignore[attr-defined]
