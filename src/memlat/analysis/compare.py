"""Policies compared on one workload, with the oracle; process pools of such comparisons.

`run_workload` runs every requested online policy on one workload with the simulator
(memlat.sim.run.simulate), `performance` always (the baseline of slowdowns, and with
its snapshots the oracle's input), and the oracle (memlat.analysis.oracle). `run_jobs`
runs many `Job`s (one workload, several policies) in a process pool - the engine of
`memlat run` and `memlat sweep`; results come back in submission order, whatever order
they finish in, so output is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass, field

import numpy as np

from memlat.analysis.oracle import oracle_for_run
from memlat.errors import ConfigError
from memlat.sim.batch import default_jobs, nominal_s, worker_pool
from memlat.sim.policies import POLICIES, Performance, Policy
from memlat.sim.results import RunResult, attach_slowdowns
from memlat.sim.run import Path_, SimSetup, make_setup, simulate
from memlat.sim.tuning import Tunables
from memlat.sim.workload import Workload

Frontier = tuple[np.ndarray, np.ndarray] | None


def run_workload(workload: Workload, policies: Sequence[str], setup: SimSetup, *,
                 path: Path_ = "compiled", memlat: Policy | None = None
                 ) -> tuple[list[RunResult], tuple[np.ndarray, np.ndarray] | None]:
    """Every requested policy on one workload (performance always runs: it is the
    baseline of slowdowns and the oracle's reference). Returns (results, oracle frontier).

    memlat: an already programmed Memlat policy to reuse (one SCMI probe per config).
    """
    wanted = list(dict.fromkeys(policies))
    for name in wanted:
        if name not in POLICIES:
            raise ConfigError(f"unknown policy {name!r} (have: {', '.join(POLICIES)})",
                              location="--policies")
    perf = simulate(setup, workload, Performance(), path=path,
                    snapshots="oracle" in wanted)
    results: list[RunResult] = []
    frontier = None
    for name in wanted:
        if name == "performance":
            results.append(perf)
        elif name == "oracle":
            assert perf.snapshots is not None
            oracle_result, frontier = oracle_for_run(workload.name, perf.snapshots, perf, setup)
            results.append(oracle_result)
        else:
            pol = memlat if name == "memlat" and memlat is not None else name
            results.append(simulate(setup, workload, pol, path=path))
    perf.snapshots = None
    attach_slowdowns(results + ([perf] if "performance" not in wanted else []))
    return results, frontier


@dataclass(frozen=True, slots=True)
class Job:
    """One workload under a set of policies with one SoC configuration."""

    workload: Workload
    policies: tuple[str, ...]
    soc: str = "x1e80100"
    seed: int = 0
    tunables: Tunables = field(default_factory=Tunables)
    path: str = "compiled"
    oracle_budget: float = 0.05
    keep_timelines: bool = True


def run_job(job: Job) -> tuple[list[RunResult], Frontier]:
    """Run one job in this process (the memlat policy probes its CPUCP once)."""
    setup = make_setup(job.soc, seed=job.seed, tunables=job.tunables,
                       oracle_budget=job.oracle_budget)
    results, frontier = run_workload(job.workload, job.policies, setup,
                                     path="python" if job.path == "python" else "compiled")
    if not job.keep_timelines:
        for r in results:
            r.timeline = None
    return results, frontier


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
        with worker_pool(min(workers, len(jobs))) as pool:
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
    return max(nominal_s(phases) for phases in job.workload.track_phases())
