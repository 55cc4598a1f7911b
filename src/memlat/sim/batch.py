"""Many runs at once, and the workloads they run.

* `simulate_batch(pairs)`: many (SoC configuration, workload) pairs under one policy
  name, in this process; each distinct configuration is programmed over SCMI once
  (memlat) and reused for all its workloads. The entry point for a tuner.
* `select_workloads`, `limit_duration`, `scale_duration`: the workloads a run uses.

Comparing several policies and the oracle on one workload, and process pools of such
jobs, is analysis (memlat.analysis.compare).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from memlat.config.model import SocConfig
from memlat.errors import ConfigError
from memlat.sim.policies import Memlat, Policy, make_policy
from memlat.sim.results import RunResult
from memlat.sim.run import SimSetup, make_setup, simulate
from memlat.sim.workload import Phase, Track, Workload, load_suite, load_workloads


def simulate_batch(pairs: Sequence[tuple[str | SocConfig | SimSetup, Workload]],
                   policy: str = "memlat", *, seed: int = 0,
                   timeline: bool = False) -> list[RunResult]:
    """`policy` on every (SoC configuration, workload) pair, in order, in this process.

    A configuration is a SoC name, a SocConfig (e.g. memlat.sim.tuning.tune_soc's) or a
    SimSetup; equal configurations share one set-up and, for memlat, one SCMI probe.
    Timelines are dropped unless asked for (a tuner needs the summary figures only).
    """
    setups: dict[str, tuple[SimSetup, Policy]] = {}
    out: list[RunResult] = []
    for cfg, workload in pairs:
        if isinstance(cfg, SimSetup):
            key = f"setup:{id(cfg)}"
        elif isinstance(cfg, str):
            key = f"name:{cfg}"
        else:
            key = cfg.model_dump_json()
        if key not in setups:
            setup = cfg if isinstance(cfg, SimSetup) else make_setup(cfg, seed=seed)
            pol = Memlat(setup.soc) if policy == "memlat" else make_policy(policy, setup.soc)
            setups[key] = (setup, pol)
        setup, pol = setups[key]
        out.append(simulate(setup, workload, pol, seed=seed, timeline=timeline))
    return out


def default_jobs() -> int:
    """Worker processes: one per available core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _scale_phase(p: Phase, factor: float) -> Phase:
    update: dict[str, float] = {}
    if p.duration_s is not None:
        floor = p.pattern.period_ms / 1000.0 if p.pattern is not None else 0.0
        update["duration_s"] = max(p.duration_s * factor, floor)
    if p.instructions is not None:
        update["instructions"] = p.instructions * factor
    return p.model_copy(update=update)


def nominal_s(phases: Sequence[Phase]) -> float:
    """Nominal length (s) of a track's phases: durations at the top OPPs, repeats counted."""
    return sum((p.duration_s or 0.0) * p.repeat for p in phases)


def limit_duration(workload: Workload, seconds: float) -> Workload:
    """The workload with every phase shortened in proportion so that its nominal length
    (phase durations at the top OPPs, longest track) is at most `seconds`.

    All phases stay, in order, so a short run still exercises every phase; frame phases
    keep at least one frame. A workload already short enough is returned unchanged.
    """
    if seconds <= 0:
        raise ValueError(f"--duration must be positive, got {seconds}")
    nominal = max(nominal_s(phases) for phases in workload.track_phases())
    if nominal <= seconds:
        return workload
    return scale_duration(workload, seconds / nominal)


def scale_duration(workload: Workload, factor: float) -> Workload:
    """The workload with every phase's duration (or instruction budget) times `factor`
    (> 1 stretches it: e.g. an hour of firmware time from a suite workload)."""
    if workload.tracks is not None:
        new_tracks = [Track(phases=[_scale_phase(p, factor) for p in t.phases or []],
                            cpus=t.cpus, cluster=t.cluster)
                      for t in workload.track_list()]
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
    suite = load_workloads(path) if path else load_suite()
    if only:
        wanted = [w.strip() for w in only.split(",") if w.strip()]
        missing = [w for w in wanted if w not in suite]
        if missing:
            raise ConfigError(f"unknown workload(s) {', '.join(missing)}; have "
                              f"{', '.join(suite)}", location="--only")
        suite = {w: suite[w] for w in wanted}
    return [limit_duration(w, duration) if duration else w for w in suite.values()]


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A process pool whose workers leave Ctrl-C to the parent: on any exception in the
    `with` body (KeyboardInterrupt included) queued jobs are cancelled and running workers
    terminated at once, not after their job (docs/cli.md: Ctrl-C within 2 s)."""
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_ignore_sigint)
    try:
        yield pool
    except BaseException:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            with contextlib.suppress(OSError, ValueError):
                proc.terminate()
        for proc in processes:
            with contextlib.suppress(OSError, ValueError, AssertionError):
                proc.join(1.0)
        raise
    pool.shutdown()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
