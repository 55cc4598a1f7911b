"""Run many (workload, setup) jobs in parallel: the engine of `memlat run` and `memlat sweep`.

Jobs are independent closed-loop simulations, so they go to a process pool
(concurrent.futures, one worker per core by default); results come back as RunResults
in submission order, whatever order they finish in, so output is deterministic.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memlat.sim.closed_loop import make_setup, run_workload
from memlat.sim.results import RunResult
from memlat.sim.tuning import Tunables
from memlat.sim.workload import Phase, Track, Workload

Frontier = tuple[np.ndarray, np.ndarray] | None


@dataclass(frozen=True, slots=True)
class Job:
    """One workload under a set of policies with one SoC configuration."""

    workload: Workload
    policies: tuple[str, ...]
    soc: str = "x1e80100"
    seed: int = 0
    tunables: Tunables = field(default_factory=Tunables)
    memlat_backend: str = "cpucp"
    oracle_budget: float = 0.05
    keep_timelines: bool = True


def run_job(job: Job) -> tuple[list[RunResult], Frontier]:
    """Run one job in this process."""
    setup = make_setup(job.soc, seed=job.seed, tunables=job.tunables,
                       memlat_backend=job.memlat_backend, oracle_budget=job.oracle_budget)
    results, frontier = run_workload(job.workload, job.policies, setup)
    if not job.keep_timelines:
        for r in results:
            r.timeline = None
    return results, frontier


def default_jobs() -> int:
    """Worker processes: one per available core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_jobs(jobs: Sequence[Job], *, workers: int | None = None,
             on_done: Callable[[int, Job], None] | None = None
             ) -> list[tuple[list[RunResult], Frontier]]:
    """Run every job (in a process pool when workers > 1); results in job order."""
    workers = default_jobs() if workers is None else workers
    out: list[tuple[list[RunResult], Frontier] | None] = [None] * len(jobs)
    if workers <= 1 or len(jobs) <= 1:
        for i, job in enumerate(jobs):
            out[i] = run_job(job)
            if on_done:
                on_done(i, job)
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            # longest first, so the last job to start is a short one (better balance)
            order = sorted(range(len(jobs)), key=lambda i: -_nominal_job_s(jobs[i]))
            futures = {pool.submit(run_job, jobs[i]): i for i in order}
            for fut in as_completed(futures):
                i = futures[fut]
                out[i] = fut.result()
                if on_done:
                    on_done(i, jobs[i])
    return [r for r in out if r is not None]


def _nominal_job_s(job: Job) -> float:
    """Nominal length of a job's workload (longest track), for scheduling only."""
    return max(_nominal_s(phases) for phases, _ in job.workload.placed_tracks())


def _scale_phase(p: Phase, factor: float) -> Phase:
    update: dict[str, float] = {}
    if p.duration_s is not None:
        floor = p.pattern.period_ms / 1000.0 if p.pattern is not None else 0.0
        update["duration_s"] = max(p.duration_s * factor, floor)
    if p.instructions is not None:
        update["instructions"] = p.instructions * factor
    return p.model_copy(update=update)


def _nominal_s(phases: Sequence[Phase]) -> float:
    return sum((p.duration_s or 0.0) * p.repeat for p in phases)


def limit_duration(workload: Workload, seconds: float) -> Workload:
    """The workload with every phase shortened in proportion so that its nominal length
    (phase durations at the top OPPs, longest track) is at most `seconds`.

    All phases stay, in order, so a short run still exercises every phase; frame phases
    keep at least one frame. A workload already short enough is returned unchanged.
    """
    if seconds <= 0:
        raise ValueError(f"--duration must be positive, got {seconds}")
    tracks = workload.placed_tracks()
    nominal = max(_nominal_s(phases) for phases, _ in tracks)
    if nominal <= seconds:
        return workload
    factor = seconds / nominal
    if workload.tracks is not None:
        new_tracks = [Track(phases=[_scale_phase(p, factor) for p in phases], cpus=place)
                      for phases, place in tracks]
        return workload.model_copy(update={"tracks": new_tracks})
    assert workload.phases is not None
    return workload.model_copy(update={"phases": [_scale_phase(p, factor)
                                                  for p in workload.phases]})


def select_workloads(path: str | Path | None, only: str | None,
                     duration: float | None) -> list[Workload]:
    """The workloads a run or sweep uses: from `path` (YAML) or the built-in suite,
    restricted to the comma-separated names in `only`, shortened to `duration` seconds.

    An unknown name raises ConfigError naming the option and the names available.
    """
    from memlat.errors import ConfigError
    from memlat.sim.workload import load_suite, load_workloads

    suite = load_workloads(path) if path else load_suite()
    if only:
        wanted = [w.strip() for w in only.split(",") if w.strip()]
        missing = [w for w in wanted if w not in suite]
        if missing:
            raise ConfigError(f"unknown workload(s) {', '.join(missing)}; have "
                              f"{', '.join(suite)}", location="--only")
        suite = {w: suite[w] for w in wanted}
    return [limit_duration(w, duration) if duration else w for w in suite.values()]
