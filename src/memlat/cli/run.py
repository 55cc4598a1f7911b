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

# names only: the simulator itself is imported when the command runs (lazy CLI start-up);
# tests/cli check these equal memlat.sim.policies.POLICIES and the oracle default
POLICIES = ("memlat", "performance", "powersave", "static-map", "bwmon", "oracle")
DEFAULT_ORACLE_BUDGET = 0.05


def _parse_policies(text: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in names if p not in POLICIES]
    if bad or not names:
        raise typer.BadParameter(f"unknown policy {', '.join(bad) or '(none)'}; "
                                 f"choose from {', '.join(POLICIES)}", param_hint="--policies")
    return names


def reproduce_command(*, soc: str, workloads: Path | None, policies: tuple[str, ...],
                      out: Path, seed: int, duration: float | None, only: str | None,
                      oracle_budget: float, sim_path: str) -> str:
    """The `memlat run` command line that reproduces a report (every setting explicit)."""
    args = ["memlat", "run", "--soc", soc, "--policies", ",".join(policies),
            "--seed", str(seed), "--oracle-budget", repr(oracle_budget),
            "--path", sim_path]
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
        jobs: int = typer.Option(1, "--jobs", min=1, help="Worker processes (default 1: "
                                 "in-process; the compiled simulator runs the suite faster "
                                 "than workers start)."),
        oracle_budget: float = typer.Option(DEFAULT_ORACLE_BUDGET, "--oracle-budget", min=0.0,
                                            help="Oracle slowdown budget (0.05 = 5 %)."),
        sim_path: str = typer.Option(
            "compiled", "--path",
            help="compiled (numba, default) or python (the same loop interpreted: slow, "
            "identical results)."),
        soc_file: Path | None = typer.Option(None, "--soc-file", help="SoC profile YAML "
                                             "(instead of --soc)."),
        perfetto: Path | None = typer.Option(None, "--perfetto", help="Also write a Perfetto "
                                             "trace of every run (open it in ui.perfetto.dev)."),
    ) -> None:
        """Simulate every policy on every workload; print a table; write the report."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from memlat.analysis.compare import Job, run_jobs
        from memlat.analysis.outdir import check_output_folder
        from memlat.analysis.report import REPORT_PATTERNS, write_report
        from memlat.cli._checks import input_file, output_file
        from memlat.sim.batch import select_workloads
        from memlat.sim.run import make_setup

        console = Console()
        if console.width < 132:  # piped or narrow: keep every column readable
            console = Console(width=132)
        # every input is checked before the simulation starts
        names = _parse_policies(policies)
        if sim_path not in ("compiled", "python"):
            raise typer.BadParameter("must be compiled or python", param_hint="--path")
        if soc_file is not None:
            input_file(soc_file, "--soc-file")
            soc = str(soc_file.resolve())  # load_profile reads a path as a YAML file
        input_file(workloads, "--workloads")
        if perfetto is not None:
            output_file(perfetto, "--perfetto", force=force,
                        inputs=(workloads, soc_file))
        check_output_folder(out, force=force, patterns=REPORT_PATTERNS)
        chosen = select_workloads(workloads, only, duration)
        # SoC and simulation profile loaded and cross-checked; every workload placed on this
        # SoC's clusters: a misfit stops here, before any simulation
        setup = make_setup(soc, seed=seed)
        for w in chosen:
            w.placed_tracks(setup.profile)
        job_list = [Job(w, names, soc=soc, seed=seed, path=sim_path,
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
                                    oracle_budget=oracle_budget, sim_path=sim_path)
        settings = {"soc": soc, "seed": seed, "policies": list(names),
                    "workloads": [w.name for w in chosen], "duration_s": duration,
                    "oracle_budget": oracle_budget, "path": sim_path,
                    "sample_ms": setup.soc.sample_ms, "elapsed_s": round(elapsed, 3),
                    "command": command}
        paths = write_report(out, results, frontiers=frontiers,
                             ladders={"ddr": setup.ladders.ddr, "llcc": setup.ladders.llcc},
                             sample_ms=setup.soc.sample_ms, settings=settings, force=force)
        if perfetto is not None:
            _write_perfetto(perfetto, results, chosen, names, soc, seed, jobs)
            console.print(f"perfetto: {perfetto} (open it in ui.perfetto.dev)")
        if "memlat" in names:
            console.print(f"memlat: per workload, an emulated CPUCP booted and programmed by "
                          f"the agent over SCMI once ({setup.soc.dialect}, "
                          f"{setup.soc.command_count()} QCOM commands, in-process SMT); the "
                          f"{sim_path} run loop runs the governor state read back from it")
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


# ---- --perfetto (issue 15): consumes the finished results only ----------------------------

def _write_perfetto(path: Path, results: list, workloads: list, names: tuple[str, ...],
                    soc: str, seed: int, jobs: int) -> None:
    """Write the Perfetto trace of `results`; the memlat policy is re-run per workload under
    a recorder for its counters and SCMI probe (memlat.analysis.perfetto_run)."""
    from memlat.analysis.perfetto_run import record_memlat_all, write_run_trace

    recordings = (record_memlat_all(workloads, soc, seed=seed, workers=jobs)
                  if "memlat" in names else {})
    write_run_trace(path, results, recordings)
