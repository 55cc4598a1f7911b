"""`memlat bench --suite sim`: closed-loop simulation throughput.

One workload on x1e80100 that keeps all 12 CPUs busy (the built-in `mix`), run
closed-loop under the `memlat` policy (the SCMI-programmed emulated CPUCP in the loop)
and under `performance` (no governor at all: executor + power model only). Figures:

* closed_loop_windows_per_s: memlat windows simulated per second of wall time;
* closed_loop_performance_windows_per_s: the same for `performance`;
* closed_loop_memlat_vs_performance_ratio: memlat windows/s / performance windows/s,
  i.e. what having the firmware governor in the loop costs (1.0 = free).
"""

from __future__ import annotations

import time
from typing import Any

from memlat.sim.closed_loop import make_policy, make_setup, run_policy
from memlat.sim.runner import limit_duration
from memlat.sim.workload import load_suite


def _rate(policy_name: str, workload: Any, setup: Any, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        policy = make_policy(policy_name, setup)
        t0 = time.perf_counter()
        result = run_policy(workload, policy, setup)
        elapsed = time.perf_counter() - t0
        policy.close()
        best = max(best, result.windows / elapsed)
    return best


def run(quick: bool = False) -> dict[str, Any]:
    """Windows per second for memlat and performance on the 12-CPU mix, and their ratio."""
    setup = make_setup("x1e80100")
    workload = limit_duration(load_suite()["mix"], 1.0 if quick else 4.0)
    repeats = 1 if quick else 3
    memlat = _rate("memlat", workload, setup, repeats)
    perf = _rate("performance", workload, setup, repeats)
    return {
        "closed_loop_windows_per_s": round(memlat, 1),
        "closed_loop_performance_windows_per_s": round(perf, 1),
        "closed_loop_memlat_vs_performance_ratio": round(memlat / perf, 4),
    }
