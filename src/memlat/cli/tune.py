"""`memlat tune`: search the memlat tunables for less energy within a slowdown budget."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add `memlat tune` to `app`."""

    @app.command()
    def tune(
        soc: str = typer.Option("x1e80100", "--soc", help="SoC profile name or YAML file."),
        workloads: Path | None = typer.Option(None, "--workloads",
                                              help="Workloads YAML (default: built-in suite)."),
        only: str | None = typer.Option(None, "--only", help="Comma-separated workload names."),
        duration: float | None = typer.Option(None, "--duration",
                                              help="Shorten each workload to at most S seconds."),
        budget: float = typer.Option(0.05, "--budget",
                                     help="Worst slowdown allowed vs performance (0.05 = 5 %)."),
        trials: int = typer.Option(200, "--trials", help="Trials per study (each fold + final)."),
        knobs: str | None = typer.Option(
            None, "--knobs", help="Comma-separated knobs to search; default: ipm_ceil, "
            "be_stall_floor, fe_stall_floor, ipm_filter, freq_scale_pct, map_scale, "
            "sample_ms. Also: wb_pct, freq_scale_floor_mhz, freq_scale_ceil_mhz, "
            "adaptive_low, adaptive_high."),
        folds: int = typer.Option(3, "--folds",
                                  help="k of the k-fold held-out check (1: no folds)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the sampler, folds and jitter."),
        workers: int = typer.Option(1, "--workers", help="Parallel simulation processes."),
        batch: int = typer.Option(8, "--batch", help="Candidates asked and simulated per "
                                  "round (the result depends on it, not on --workers)."),
        dask_scheduler: str | None = typer.Option(
            None, "--dask-scheduler", help="Address of a dask.distributed scheduler to run "
            "trials on (extra memlat[dask]) instead of local processes."),
        storage: str | None = typer.Option(
            None, "--storage", help="Optuna storage URL (default: sqlite file tune.db in "
            "--out's parent, so a tune resumes)."),
        study: str = typer.Option("memlat-tune", "--study", help="Study name prefix."),
        base_dts: Path | None = typer.Option(
            None, "--base-dts", help="Board .dts the overlay refines (default: the shipped "
            "x1e80100 CRD tree for x1e80100)."),
        out: Path = typer.Option(Path("memlat-tune"), "--out", help="Output folder."),
        force: bool = typer.Option(False, "--force",
                                   help="Replace the files of an earlier tune in --out."),
    ) -> None:
        """Tune memlat's firmware knobs (multi-objective, k-fold held-out), then write the
        Pareto front, the chosen configuration as profile YAML, DT overlay and SCMI
        commands, and a summary."""
        from importlib import resources

        from rich.console import Console

        from memlat.errors import MemlatError
        from memlat.sim.batch import select_workloads

        err = Console(stderr=True)
        try:
            from memlat.analysis.tune import (
                DEFAULT_KNOBS,
                TuneError,
                TuneOptions,
                check_options,
                settings_key,
            )
            from memlat.analysis.tune import tune as run_tune
            from memlat.analysis.tune_export import write_outputs
        except ModuleNotFoundError as exc:  # the optional extra is missing
            err.print(f"memlat tune needs Optuna ({exc}); install memlat[tune]")
            raise typer.Exit(1) from exc
        if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not force)):
            what = "is not a folder" if not out.is_dir() else "is not empty (use --force)"
            err.print(f"memlat tune: --out {out} {what}")
            raise typer.Exit(2)
        if base_dts is None and soc == "x1e80100":
            with resources.as_file(resources.files("memlat") / "examples") as ex:
                base_dts = ex / "x1e80100-crd-memlat.dts"
        out_parent = out.resolve().parent
        if not out_parent.is_dir():
            err.print(f"memlat tune: the folder of --out ({out_parent}) does not exist")
            raise typer.Exit(2)
        opts = TuneOptions(
            soc=soc, budget=budget, trials=trials, seed=seed, workers=workers, batch=batch,
            storage=storage or f"sqlite:///{out_parent / 'tune.db'}",
            study_prefix=study, folds=folds,
            dask_scheduler=dask_scheduler,
            knobs=tuple(k.strip() for k in knobs.split(",") if k.strip()) if knobs
            else DEFAULT_KNOBS)
        try:
            chosen = select_workloads(workloads, only, duration)
            check_options(opts, chosen)
        except (TuneError, MemlatError) as exc:
            err.print(f"memlat tune: {exc}")
            raise typer.Exit(2) from exc
        # the study names carry the settings: the same command resumes, another never mixes
        opts.study_prefix = f"{study}-{Path(soc).stem}-{settings_key(opts, chosen)}"

        def progress(name: str, study_result: object) -> None:
            trials_done = getattr(study_result, "trials", [])
            best = getattr(study_result, "best", None)
            best_txt = (f"best {best.values[0]:.4f} x perf at {100 * best.values[1]:.2f} %"
                        if best is not None else "no feasible trial yet")
            err.print(f"  {name.rsplit('-', 1)[-1]}: {len(trials_done)}/{trials} trials, "
                      f"{best_txt}",
                      highlight=False)

        studies = folds + 1 if folds > 1 and len(chosen) > 1 else 1
        err.print(f"memlat tune: {soc}, {len(chosen)} workloads, budget "
                  f"{100 * budget:.1f} %, {trials} trials x {studies} studies, storage "
                  f"{opts.storage}", highlight=False)
        try:
            result = run_tune(opts, chosen, on_trial=progress)
        except (TuneError, MemlatError) as exc:
            err.print(f"memlat tune: {exc}")
            raise typer.Exit(2) from exc
        out.mkdir(exist_ok=True)
        command = "memlat " + shlex.join(sys.argv[1:])
        for path in write_outputs(result, out, command=command, base_dts=base_dts):
            err.print(f"  wrote {path}", highlight=False)
        if result.interrupted:  # the files cover the finished trials; exit 130 (docs/cli.md)
            raise typer.Exit(130)
