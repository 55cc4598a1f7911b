"""Optional numba kernel of the batch engine: one compiled loop over windows.

Same semantics as `memlat.governor.reference` (algorithm.md §2.11, decisions.md §2).
All arithmetic is done in uint64 with explicit masks so that numba never promotes to
float. Importing this module raises ImportError when numba is not installed; the
numpy engine does not need it.
"""

from __future__ import annotations

import numba
import numpy as np

from memlat.governor.engine import BatchResult
from memlat.governor.spec import N_COUNTERS, UNUSED_EVENT, CounterTrace, GovernorConfig

_M32 = np.uint64(0xFFFF_FFFF)


def _event(e: int) -> int:
    """Counter column, or -1 for an unused slot / unknown id (reads as 0)."""
    return e if e != UNUSED_EVENT and 0 <= e < N_COUNTERS else -1


@numba.njit(cache=True, nogil=True)
def _ctr(row: np.ndarray, e: int) -> np.uint64:
    if e < 0:
        return np.uint64(0)
    return row[e]


@numba.njit(cache=True, nogil=True)
def _mf100(n: np.uint64, d: np.uint64) -> np.uint64:
    n = n & _M32
    d = d & _M32
    if d == 0:
        return np.uint64(0)
    q = np.uint64(100) // d
    r = np.uint64(100) % d
    return (((q * n) & _M32) + (((r * n) & _M32) // d)) & _M32


@numba.njit(cache=True, nogil=True)
def _kernel(deltas, dt_us, common, method, cmax, grp_ev, grp_adapt, mon_grp, mon_u,
            mon_mask, mon_keys, mon_vals, mon_nrows, mon_minmax, n_groups):
    n_win, n_cpu = dt_us.shape
    n_mon = mon_grp.shape[0]
    targets = np.zeros((n_win, n_mon), np.int64)
    votes = np.zeros((n_win, n_groups), np.int64)
    ipm = np.zeros((n_cpu, n_groups), np.uint64)  # stale IPM state (decisions.md §2)
    f = np.zeros(n_cpu, np.uint64)
    fe = np.zeros(n_cpu, np.uint64)
    be = np.zeros(n_cpu, np.uint64)
    wb = np.zeros((n_cpu, n_groups), np.uint64)
    e_inst, e_cyc, e_const, e_fe, e_be = common[0], common[1], common[2], common[3], common[4]
    for w in range(n_win):
        for c in range(n_cpu):
            row = deltas[w, c]
            cyc = _ctr(row, e_cyc)
            if method == 0:
                const = _ctr(row, e_const)
                f[c] = ((cyc * cmax[c]) // const) & _M32 if const != 0 else np.uint64(0)
            else:
                dt = dt_us[w, c]
                f[c] = (cyc // np.uint64(dt)) & _M32 if dt > 0 else np.uint64(0)
            fe[c] = np.uint64(100) if e_fe < 0 else _mf100(_ctr(row, e_fe), cyc)
            be[c] = np.uint64(100) if e_be < 0 else _mf100(_ctr(row, e_be), cyc)
            inst = _ctr(row, e_inst)
            for g in range(n_groups):
                miss = _ctr(row, grp_ev[g, 0])
                if miss > 0:
                    ipm[c, g] = (inst // miss) & _M32
                if grp_ev[g, 1] >= 0 and grp_ev[g, 2] >= 0:
                    wb[c, g] = _mf100(_ctr(row, grp_ev[g, 1]), _ctr(row, grp_ev[g, 2]))
                else:
                    wb[c, g] = np.uint64(0)
        for m in range(n_mon):
            g = mon_grp[m]
            compute, ceil, fe_fl, be_fl, wb_thr, filt, pct, sfloor, sceil = (
                mon_u[m, 0], mon_u[m, 1], mon_u[m, 2], mon_u[m, 3], mon_u[m, 4],
                mon_u[m, 5], mon_u[m, 6], mon_u[m, 7], mon_u[m, 8])
            best = np.uint64(0)
            for c in range(n_cpu):
                if not mon_mask[m, c]:
                    continue
                fc = f[c]
                ip = ipm[c, g]
                if compute != 0 or (wb[c, g] >= wb_thr and ip <= filt):
                    cand = fc
                elif ip <= ceil:
                    cand = fc
                    if pct != 0 and sfloor < fc and fc < sceil and (fe[c] >= fe_fl
                                                                    or be[c] >= be_fl):
                        prod = (((fc * (ceil - ip)) & _M32) * pct) & _M32
                        den = (ceil * np.uint64(100)) & _M32
                        boost = prod // den if den != 0 else np.uint64(0)
                        boosted = (fc + boost) & _M32
                        cand = sceil if sceil < boosted else boosted
                else:
                    continue
                if cand > best:
                    best = cand
            nrows = mon_nrows[m]
            if nrows == 0:
                mem = np.int64(0)
            else:
                mem = mon_vals[m, nrows - 1]
                for r in range(nrows):
                    if mon_keys[m, r] >= best:
                        mem = mon_vals[m, r]
                        break
            lo, hi = mon_minmax[m, 0], mon_minmax[m, 1]
            if mem < lo:
                mem = lo
            if mem > hi:
                mem = hi
            targets[w, m] = mem
            if mem > votes[w, g]:
                votes[w, g] = mem
        for g in range(n_groups):
            low, high = grp_adapt[g, 0], grp_adapt[g, 1]
            v = votes[w, g]
            if v < low:
                votes[w, g] = low
            elif v < high:
                votes[w, g] = high
    return targets, votes


def run_trace_numba(config: GovernorConfig, trace: CounterTrace) -> BatchResult:
    """run_trace with the compiled kernel (first call compiles, later calls are cached)."""
    n_cpu = trace.ncpus
    ev = config.common
    common = np.array([_event(e) for e in (ev.inst, ev.cyc, ev.const_cyc, ev.fe_stall,
                                            ev.be_stall)], np.int64)
    cmax = np.zeros(n_cpu, np.uint64)
    k = min(n_cpu, len(config.cluster_max_mhz))
    cmax[:k] = np.asarray(config.cluster_max_mhz[:k], np.uint64)
    groups = config.groups
    grp_ev = np.array([[_event(g.miss_event), _event(g.wb_event), _event(g.acc_event)]
                       for g in groups], np.int64).reshape(len(groups), 3)
    grp_adapt = np.array([[g.adaptive_low_khz, g.adaptive_high_khz] for g in groups],
                         np.int64).reshape(len(groups), 2)
    mons = config.monitors
    n_mon = len(mons)
    rows = max([len(m.map_rows) for _, _, m in mons] + [1])
    mon_grp = np.array([g for g, _, _ in mons], np.int64)
    mon_u = np.array([[int(m.compute), m.ipm_ceil, m.fe_stall_floor, m.be_stall_floor,
                       m.wb_pct, m.ipm_filter, m.freq_scale_pct, m.freq_scale_floor_mhz,
                       m.freq_scale_ceil_mhz] for _, _, m in mons], np.uint64).reshape(n_mon, 9)
    mon_mask = np.zeros((n_mon, n_cpu), np.bool_)
    mon_keys = np.zeros((n_mon, rows), np.uint64)
    mon_vals = np.zeros((n_mon, rows), np.int64)
    mon_nrows = np.zeros(n_mon, np.int64)
    mon_minmax = np.zeros((n_mon, 2), np.int64)
    for i, (_, _, m) in enumerate(mons):
        for c in m.cpus():
            if c < n_cpu:
                mon_mask[i, c] = True
        scale = 1 if m.is_level else 1000
        for r, (key, val) in enumerate(m.map_rows):
            mon_keys[i, r] = key
            mon_vals[i, r] = val * scale
        mon_nrows[i] = len(m.map_rows)
        mon_minmax[i] = (m.min_freq, m.max_freq)
    deltas = np.ascontiguousarray(trace.deltas, dtype=np.uint64)
    dt = np.ascontiguousarray(trace.dt_us, dtype=np.int64)
    targets, votes = _kernel(deltas, dt, common, np.int64(config.method), cmax, grp_ev,
                             grp_adapt, mon_grp, mon_u, mon_mask, mon_keys, mon_vals,
                             mon_nrows, mon_minmax, np.int64(len(groups)))
    prev = np.vstack([np.zeros((1, votes.shape[1]), np.int64), votes[:-1]])
    return BatchResult(targets, votes, votes != prev)
