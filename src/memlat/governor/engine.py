"""The batch engine: the reference governor over a whole trace at once, with numpy.

Same integer semantics as `memlat.governor.reference` (algorithm.md §2.11,
decisions.md §2), vectorised over windows:

* the only state that crosses windows is the stale IPM (kept when a window has no
  misses); it is a forward fill along the window axis, done with
  `np.maximum.accumulate` over "last window with misses" indices;
* the adaptive snap is stateless for the vote (V3 rule, algorithm.md §2.4): with fixed
  knobs the snapped vote depends only on this window's max;
* map lookup counts the row keys below the candidate, on the running maximum of the
  keys (what `np.searchsorted` would return), which equals "first row whose key >= x"
  even for a table that is not ascending.

Monitors that share every qualification knob share one per-CPU "qualified frequency"
array, so the work per window is a few passes over the (windows, cpus) arrays.
The compiled kernel (memlat.governor._numba, one loop over windows) is the default;
`use_numba=False` selects this numpy engine. Both give identical results
(tests/governor check them against the reference on every window).
"""

from __future__ import annotations

import numpy as np

from memlat.governor import _numba
from memlat.governor.spec import (
    N_COUNTERS,
    UNUSED_EVENT,
    BatchResult,
    CounterTrace,
    GovernorConfig,
    GroupSpec,
    MonitorSpec,
)

_M32 = np.uint64(0xFFFF_FFFF)


def _u64(x: np.ndarray) -> np.ndarray:
    return x if x.dtype == np.uint64 else x.astype(np.uint64)


def _div0(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise a // b on uint64, 0 where b == 0."""
    q = a // np.maximum(b, np.uint64(1))
    zero = b == 0
    if zero.any():
        q[zero] = 0
    return q


def _mult_frac_100(n: np.ndarray, d: np.ndarray) -> np.ndarray:
    """mult_frac(100, u32(n), u32(d)) with u32 partial products (algorithm.md §1.4)."""
    n = n & _M32
    d = d & _M32
    ds = np.maximum(d, np.uint64(1))
    q = np.uint64(100) // ds
    r = np.uint64(100) % ds
    out = (((q * n) & _M32) + (((r * n) & _M32) // ds)) & _M32
    out[d == 0] = 0
    return out


class _Counters:
    """Counter columns of a (W, C, N) uint64 delta array as (W, C) strided views.

    Views, not copies: each column is read once or twice, so a copy would only add a
    write pass (the bench's bare_read_ratio measures this floor).
    """

    def __init__(self, deltas: np.ndarray) -> None:
        self.deltas = deltas
        self.shape = deltas.shape[:2]

    def __getitem__(self, event: int) -> np.ndarray:
        if event == UNUSED_EVENT or not 0 <= event < N_COUNTERS:
            return np.zeros(self.shape, np.uint64)
        return self.deltas[:, :, event]


def _stale_fill(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Forward-fill (W, C) u32 `values` along windows from where `valid`; 0 before.

    Each valid entry is tagged with its window index in the high 32 bits, so a running
    maximum along the windows carries the latest valid value; the low 32 bits are it.
    Entries where not `valid` are never read, so `values` may hold anything there.
    """
    w = values.shape[0]
    tagged = (np.arange(w, dtype=np.uint64) << np.uint64(32))[:, None] | values
    tagged = np.where(valid, tagged, np.uint64(0))
    np.maximum.accumulate(tagged, axis=0, out=tagged)
    tagged &= _M32
    return tagged


def _qual_key(mon: MonitorSpec) -> tuple[int, ...]:
    """The knobs that decide a CPU's candidate (everything but cpumask and the map)."""
    if mon.compute:
        return (1,)
    return (0, mon.ipm_ceil, mon.fe_stall_floor, mon.be_stall_floor, mon.wb_pct,
            mon.ipm_filter, mon.freq_scale_pct, mon.freq_scale_floor_mhz,
            mon.freq_scale_ceil_mhz)


def _candidates(mon: MonitorSpec, f: np.ndarray, fe: np.ndarray, be: np.ndarray,
                ipm: np.ndarray, wb: np.ndarray) -> np.ndarray:
    """(W, C) uint64 candidate per CPU for `mon`'s knobs; 0 where the CPU does not qualify.

    0 is a safe "no candidate": best starts at 0 and only grows (algorithm.md §2.1).
    All values are u32 quantities held in uint64.
    """
    if mon.compute:
        return f
    if wb.size == 1 and int(wb.flat[0]) < mon.wb_pct:  # write-back test never passes
        plain = np.zeros((1, 1), bool)
        lat = ipm <= mon.ipm_ceil
    else:
        plain = (wb >= mon.wb_pct) & (ipm <= mon.ipm_filter)
        lat = ~plain & (ipm <= mon.ipm_ceil)
    cand = f
    if mon.freq_scale_pct != 0:
        gate = lat & (f > mon.freq_scale_floor_mhz) & (f < mon.freq_scale_ceil_mhz)
        gate &= (fe >= mon.fe_stall_floor) | (be >= mon.be_stall_floor)
        if gate.any():
            diff = np.uint64(mon.ipm_ceil) - ipm  # wraps where ipm > ceil: masked below
            prod = (((f * diff) & _M32) * np.uint64(mon.freq_scale_pct)) & _M32
            den = (mon.ipm_ceil * 100) & 0xFFFF_FFFF
            boost = prod // np.uint64(den) if den else np.zeros_like(prod)
            boosted = np.minimum(np.uint64(mon.freq_scale_ceil_mhz), (f + boost) & _M32)
            cand = np.where(gate, boosted, f)
    return np.where(plain | lat, cand, np.uint64(0))


def _map_targets(mon: MonitorSpec, best: np.ndarray) -> np.ndarray:
    """MAP(best), scaled to kHz unless a level monitor, clamped (algorithm.md §2.2).

    With the running maximum of the keys, "first row whose key >= x" is the number of
    keys below x (what np.searchsorted returns); capping it at the last row is the
    "else the last row" rule. Maps are short (<= 10 rows), so counting the first n-1
    keys with comparisons is cheaper than a binary search per element.
    """
    if not mon.map_rows:
        mem = np.zeros(best.shape, np.int64)
    else:
        keys = np.maximum.accumulate(np.array([r[0] for r in mon.map_rows], np.uint64))
        scale = 1 if mon.is_level else 1000
        vals = np.array([r[1] * scale for r in mon.map_rows], np.int64)
        idx = np.zeros(best.shape, np.intp)
        for key in keys[:-1]:
            idx += best > key
        mem = vals[idx]
    # min then max, as the reference: a min above max yields max
    return np.minimum(np.maximum(mem, mon.min_freq), mon.max_freq).astype(np.int64)


def _adaptive(grp: GroupSpec, vote: np.ndarray) -> np.ndarray:
    """V3 adaptive snap (algorithm.md §2.4), vectorised; identity when both knobs are 0."""
    low, high = grp.adaptive_low_khz, grp.adaptive_high_khz
    if low == 0 and high == 0:
        return vote
    return np.where(vote < low, low, np.where(vote < high, high, vote)).astype(np.int64)


def cpu_frequency(config: GovernorConfig, trace: CounterTrace) -> np.ndarray:
    """(W, C) int64 effective frequency in MHz (decisions.md §2, methods 0 and 1)."""
    return _frequency(config, trace, _Counters(_u64(trace.deltas))).astype(np.int64)


def _frequency(config: GovernorConfig, trace: CounterTrace, ctr: _Counters) -> np.ndarray:
    """(W, C) uint64 effective frequency, u32-truncated."""
    cyc = ctr[config.common.cyc]
    if config.method == 0:
        ncpu = trace.ncpus
        cmax = np.zeros(ncpu, np.uint64)
        k = min(ncpu, len(config.cluster_max_mhz))
        cmax[:k] = np.asarray(config.cluster_max_mhz[:k], np.uint64)
        # the firmware multiplies in u64, so the product wraps (see reference.py)
        f = _div0(cyc * cmax[None, :], ctr[config.common.const_cyc])
    else:
        f = _div0(cyc, np.maximum(trace.dt_us, 0).astype(np.uint64))
    f &= _M32
    return f


def _needs_stalls(config: GovernorConfig) -> bool:
    """FE/BE stall % matter only to monitors that can boost (algorithm.md §2.1)."""
    return any(m.freq_scale_pct != 0 and not m.compute for _, _, m in config.monitors)


def run_trace(config: GovernorConfig, trace: CounterTrace, *,
              use_numba: bool = True) -> BatchResult:
    """Run the governor over every window of `trace` from a fresh state.

    use_numba (default): the compiled kernel of `memlat.governor._numba`; False: the
    numpy engine below. Results are identical.
    """
    if use_numba:
        return _numba.run_trace_numba(config, trace)
    ctr = _Counters(_u64(trace.deltas))
    w, ncpu = trace.windows, trace.ncpus
    ev = config.common
    f = _frequency(config, trace, ctr)
    if _needs_stalls(config):
        cyc = ctr[ev.cyc]
        full = np.full((w, ncpu), 100, np.uint64)
        fe = full if ev.fe_stall == UNUSED_EVENT else _mult_frac_100(ctr[ev.fe_stall], cyc)
        be = full if ev.be_stall == UNUSED_EVENT else _mult_frac_100(ctr[ev.be_stall], cyc)
    else:  # never read: no monitor boosts
        fe = be = np.empty((0, 0), np.uint64)
    inst = ctr[ev.inst]

    targets = np.zeros((len(config.monitors), w), np.int64)  # monitor-major while filling
    votes = np.zeros((len(config.groups), w), np.int64)
    ipm_by_miss: dict[int, np.ndarray] = {}  # groups often share the miss event
    col = 0
    for g, grp in enumerate(config.groups):
        if grp.miss_event not in ipm_by_miss:
            miss = ctr[grp.miss_event]
            # entries with miss == 0 are never read: the stale fill skips them
            raw = (inst // np.maximum(miss, np.uint64(1))) & _M32
            # decisions.md §2: stale IPM when miss == 0 (initially 0)
            # (the tag in _stale_fill needs windows < 2**32, far beyond any trace)
            ipm_by_miss[grp.miss_event] = _stale_fill(raw, miss > 0)
        ipm = ipm_by_miss[grp.miss_event]
        if grp.wb_event != UNUSED_EVENT and grp.acc_event != UNUSED_EVENT:
            wb = _mult_frac_100(ctr[grp.wb_event], ctr[grp.acc_event])
        else:
            wb = np.zeros((1, 1), np.uint64)  # broadcasts as "0 everywhere"
        cache: dict[tuple[int, ...], np.ndarray] = {}
        vote = votes[g]
        for mon in grp.monitors:
            cpus = [c for c in mon.cpus() if c < ncpu]  # absent CPUs are idle
            if cpus:
                key = _qual_key(mon)
                if key not in cache:
                    cache[key] = _candidates(mon, f, fe, be, ipm, wb)
                cand = cache[key]
                # column by column: faster than a row-wise max over a few columns
                best = cand[:, cpus[0]].copy()
                for c in cpus[1:]:
                    np.maximum(best, cand[:, c], out=best)
            else:
                best = np.zeros(w, np.uint64)
            targets[col] = _map_targets(mon, best)
            np.maximum(vote, targets[col], out=vote)
            col += 1
        votes[g] = _adaptive(grp, vote)
    votes_wg = votes.T.copy()
    prev = np.vstack([np.zeros((1, votes_wg.shape[1]), np.int64), votes_wg[:-1]])
    return BatchResult(targets.T.copy(), votes_wg, votes_wg != prev)
