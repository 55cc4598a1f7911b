"""Parameter sweeps: a grid of memlat tunables across workloads, one table row per point.

The grid is the Cartesian product of the values given for each knob of
memlat.sim.tuning.Tunables (ipm ceiling, map scale, sample period, boost). Every
(grid point, workload) is one closed-loop job (the policies asked for, plus the
`performance` baseline the slowdown needs); jobs run in a process pool
(concurrent.futures, the default) or on a dask.distributed cluster (`backend="dask"`,
the optional `dask` extra). The result is a polars DataFrame, written as Parquet.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from memlat.analysis.compare import Job, run_job, run_jobs
from memlat.errors import ConfigError
from memlat.sim.tuning import Tunables
from memlat.sim.workload import Workload

KNOBS = ("ipm_ceil", "map_scale", "sample_ms", "boost_pct")
BACKENDS = ("processes", "dask")


@dataclass(frozen=True, slots=True)
class Grid:
    """Values per knob; an empty list leaves that knob at the profile's value."""

    ipm_ceil: Sequence[int] = ()
    map_scale: Sequence[float] = ()
    sample_ms: Sequence[int] = ()
    boost_pct: Sequence[int] = ()

    def points(self) -> list[Tunables]:
        """Every combination, in a stable order (knobs in KNOBS order, values as given)."""
        axes: list[Sequence[Any]] = [getattr(self, k) or (None,) for k in KNOBS]
        return [Tunables(**dict(zip(KNOBS, combo, strict=True)))
                for combo in itertools.product(*axes)]


@dataclass(slots=True)
class SweepSpec:
    """What to sweep: the grid, the workloads and how to run them."""

    grid: Grid
    workloads: Sequence[Workload]
    policies: tuple[str, ...] = ("memlat",)
    soc: str = "x1e80100"
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def jobs(self) -> list[Job]:
        """One job per (grid point, workload), grid-major."""
        return [Job(w, self.policies, soc=self.soc, seed=self.seed, tunables=t,
                    keep_timelines=False)
                for t in self.grid.points() for w in self.workloads]


def _run_dask(jobs: list[Job], workers: int | None) -> list[Any]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise ConfigError("the dask backend needs the optional extra: "
                          "pip install 'memlat[dask]'", location="--backend") from exc
    with LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        futures = client.map(run_job, jobs, pure=False)
        return client.gather(futures)


def run_sweep(spec: SweepSpec, *, backend: str = "processes", workers: int | None = None,
              on_done: Callable[[int, Job], None] | None = None) -> pl.DataFrame:
    """Run every job; returns one row per (grid point, workload, policy)."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r} (have: {', '.join(BACKENDS)})",
                          location="--backend")
    jobs = spec.jobs()
    if backend == "dask":
        outputs = _run_dask(jobs, workers)
    else:
        outputs = run_jobs(jobs, workers=workers, on_done=on_done)
    rows: list[dict[str, Any]] = []
    for job, (results, _) in zip(jobs, outputs, strict=True):
        for r in results:
            if r.policy not in spec.policies:
                continue
            row: dict[str, Any] = {k: getattr(job.tunables, k) for k in KNOBS}
            row.update({
                "workload": r.workload, "policy": r.policy, "soc": r.soc, "seed": job.seed,
                "time_s": r.time_s, "slowdown": r.slowdown, "energy_j": r.energy_j,
                "energy_cpu_j": r.e_cpu_j, "energy_ddr_j": r.e_ddr_j,
                "energy_llcc_j": r.e_llcc_j, "edp_js": r.edp,
                "transitions_ddr": r.transitions.get("ddr", 0),
                "transitions_llcc": r.transitions.get("llcc", 0),
                "transitions_ddr_qos": r.transitions.get("ddr_qos", 0),
            })
            rows.append(row)
    schema = {"ipm_ceil": pl.Int64, "map_scale": pl.Float64, "sample_ms": pl.Int64,
              "boost_pct": pl.Int64}
    return pl.DataFrame(rows, schema_overrides=schema)


def write_parquet(df: pl.DataFrame, path: Path | str) -> Path:
    """Write the sweep table as Parquet (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(path)
    return path
