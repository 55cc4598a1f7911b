"""`memlat bench --suite sim`: the closed loop, compiled, against the Python path.

One workload on x1e80100 that keeps all 12 CPUs busy (the built-in `mix`: 3 clusters,
memlat with 3 groups and 10 monitors), run closed-loop. Figures (same run, ratios):

* closed_loop_windows_per_s: memlat windows simulated per second of wall time, compiled
  kernel, cache warm, set-up included (workload and policy packing, allocation, result
  assembly; best of several runs). The memlat configuration is programmed over SCMI once
  (memlat_probe_ms, warm) and reused, as a batch or a tuner does;
  closed_loop_windows_per_s_with_probe charges that probe to the one run;
* closed_loop_python_windows_per_s and closed_loop_compiled_vs_python_ratio: the same
  source interpreted (on a prefix of the workload);
* closed_loop_performance_windows_per_s: `performance` (no governor);
* hour_*: one hour of firmware time (900k windows, the mix stretched) simulated in one
  run in a fresh process: wall time, peak RSS, and the process's RSS before the run;
* memlat_run_s / memlat_run_cpu_s: the default `memlat run` (every policy, the oracle,
  the whole suite, the report), warm (second of two runs), wall and CPU time;
  memlat_help_s: `memlat --help`, best of three.

Wall times on a loaded machine are noisy (load_average_1m and cpus are reported with the
figures); the *_cpu_* figures (process CPU time) say what the work itself costs.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from memlat.sim.batch import limit_duration, scale_duration
from memlat.sim.policies import Memlat, Performance
from memlat.sim.run import make_setup, simulate
from memlat.sim.workload import Workload, load_suite

_HOUR = """
import json, resource, time
from memlat.sim.batch import scale_duration
from memlat.sim.policies import Memlat
from memlat.sim.run import make_setup, simulate, warm
from memlat.sim.workload import load_suite
warm()
setup = make_setup("x1e80100")
policy = Memlat(setup.soc)
mix = load_suite()["mix"]
nominal = max(sum((p.duration_s or 0) * p.repeat for p in ph) for ph in mix.track_phases())
wl = scale_duration(mix, {seconds} / nominal)
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
c0 = time.process_time()
r = simulate(setup, wl, policy)
wall = time.perf_counter() - t0
cpu = time.process_time() - c0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"windows": r.windows, "wall_s": wall, "cpu_s": cpu, "rss_kib": rss,
                  "rss0_kib": rss0, "firmware_s": r.time_s}}))
"""


def _fresh(workload: Workload) -> Workload:
    """A copy with a new identity, so the run packs it again (set-up included)."""
    return workload.model_copy()


def _rate(setup: Any, workload: Workload, policy: Any, repeats: int, path: str = "compiled"
          ) -> tuple[float, float]:
    """Best (windows per wall second, windows per CPU second) over `repeats` runs."""
    best = best_cpu = 0.0
    for _ in range(repeats):
        wl = _fresh(workload)
        t0 = time.perf_counter()
        c0 = time.process_time()
        result = simulate(setup, wl, policy, path=path)  # type: ignore[arg-type]
        cpu = max(time.process_time() - c0, 1e-9)
        best = max(best, result.windows / (time.perf_counter() - t0))
        best_cpu = max(best_cpu, result.windows / cpu)
    return best, best_cpu


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _timed(cmd: list[str], cwd: str) -> tuple[float, float]:
    """(wall s, CPU s) of one child process."""
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0, _children_cpu() - cpu0


def _hour(seconds: float) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", _HOUR.format(seconds=seconds)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> dict[str, Any]:
    """Closed-loop throughput (compiled vs Python), an hour in one run, `memlat run`."""
    setup = make_setup("x1e80100")
    mix = load_suite()["mix"]
    t0 = time.perf_counter()
    memlat = Memlat(setup.soc)
    first_probe = time.perf_counter() - t0
    probe_s = min(first_probe, *[_probe_once(setup) for _ in range(3)])
    workload = limit_duration(mix, 2.0) if quick else mix
    simulate(setup, workload, memlat)  # warm: load (or compile) the kernel
    repeats = 3 if quick else 7
    compiled, compiled_cpu = _rate(setup, workload, memlat, repeats)
    perf, _ = _rate(setup, workload, Performance(), repeats)
    prefix = limit_duration(mix, 0.2 if quick else 0.8)
    python, python_cpu = _rate(setup, prefix, memlat, 1, path="python")
    windows = simulate(setup, workload, memlat).windows
    figures: dict[str, Any] = {
        "closed_loop_windows": windows,
        "closed_loop_windows_per_s": round(compiled, 1),
        "closed_loop_windows_per_cpu_s": round(compiled_cpu, 1),
        "closed_loop_windows_per_s_with_probe": round(
            windows / (windows / compiled + probe_s), 1),
        "memlat_probe_ms": round(probe_s * 1000, 2),
        "closed_loop_performance_windows_per_s": round(perf, 1),
        "closed_loop_memlat_vs_performance_ratio": round(compiled / perf, 4),
        "closed_loop_python_windows_per_s": round(python, 1),
        "closed_loop_compiled_vs_python_ratio": round(compiled / python, 1),
        "closed_loop_compiled_vs_python_cpu_ratio": round(compiled_cpu / python_cpu, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": len(os.sched_getaffinity(0)),
    }
    hour = _hour(60.0 if quick else 3600.0)
    figures.update({
        "hour_firmware_s": round(hour["firmware_s"], 1),
        "hour_windows": hour["windows"],
        "hour_wall_s": round(hour["wall_s"], 3),
        "hour_cpu_s": round(hour["cpu_s"], 3),
        "hour_peak_rss_mib": round(hour["rss_kib"] / 1024, 1),
        "hour_rss_before_run_mib": round(hour["rss0_kib"] / 1024, 1),
    })
    memlat_bin = str(Path(sys.executable).with_name("memlat"))
    with tempfile.TemporaryDirectory() as tmp:
        # --force: the warm-up run wrote the folder the timed run replaces
        cmd = [memlat_bin, "run", "--force", "--out", str(Path(tmp) / "report")]
        if quick:  # a smoke test of the figures: one short run, no warm-up
            cmd += ["--only", "mcf", "--duration", "0.3", "--policies", "memlat,performance"]
        else:
            _timed(cmd, tmp)  # warm: .pyc, the kernel cache, matplotlib's font cache
        wall, cpu = _timed(cmd, tmp)
        helps = [_timed([memlat_bin, "--help"], tmp) for _ in range(1 if quick else 3)]
    figures.update({
        "memlat_run_s": round(wall, 2),
        "memlat_run_cpu_s": round(cpu, 2),
        "memlat_help_s": round(min(h[0] for h in helps), 3),
        "memlat_help_cpu_s": round(min(h[1] for h in helps), 3),
    })
    return figures


def _probe_once(setup: Any) -> float:
    t0 = time.perf_counter()
    Memlat(setup.soc)
    return time.perf_counter() - t0


__all__ = ["run", "scale_duration"]
