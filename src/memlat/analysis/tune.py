"""`memlat tune`: search the firmware's memlat tunables for less energy at bounded slowdown.

Method (docs/tuning.md):

* **Knobs.** The search space is what the firmware exposes per monitor and group
  (protocol.md §2.4 of the project specification): IPM_CEIL, FE/BE_STALL_FLOOR, WB_PCT,
  IPM_FILTER, FREQ_SCALE_PCT / FLOOR / CEIL, the monitor maps (every bus value scaled by
  one factor per group and snapped up to the group's OPP ladder), SAMPLE_MS and the
  group's ADAPTIVE_LOW/HIGH_FREQ floors (OPPs of the ladder). A knob is set for every
  latency (IPM) monitor of a group at once; compute monitors keep theirs.
* **Candidates are real.** A trial's parameters become a `SocConfig` (re-validated) that
  the agent probes into a fresh emulated CPUCP over SCMI: a configuration the firmware
  refuses is *pruned* with the firmware's reason, never simulated.
* **Objectives.** On a set of workloads: the energy ratio sum(E_memlat) / sum(E_perf)
  (lower is better) and the worst slowdown time / time_perf - 1. A candidate whose worst
  slowdown exceeds the budget is infeasible (Optuna constraint), so the chosen
  configuration is the feasible trial with the least energy.
* **Search.** Optuna's multi-objective TPE sampler, asked for a batch of candidates at a
  time (ask/tell), the batch simulated in parallel (processes, or a dask.distributed
  cluster), then told in order: the result of a seeded tune does not depend on the
  number of workers. The study lives in an Optuna storage (SQLite by default), so an
  interrupted tune resumes where it stopped.
* **Generalisation.** k-fold over the workloads: each fold is tuned on the other
  workloads and its chosen configuration is scored on the held-out ones; the note on the
  report is the held-out figure, never the training fit. The configuration handed back
  is then tuned on every workload.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import random
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import optuna

from memlat.agent.offline import programmed_governor
from memlat.agent.probe import ProbeError
from memlat.analysis.compare import run_workload
from memlat.config.model import Group, SocConfig, parse_soc
from memlat.errors import ConfigError, MemlatError
from memlat.governor.spec import (
    DEFAULT_FE_STALL_FLOOR,
    DEFAULT_FREQ_SCALE_CEIL_MHZ,
    DEFAULT_FREQ_SCALE_FLOOR_MHZ,
    DEFAULT_FREQ_SCALE_PCT,
    DEFAULT_IPM_FILTER,
    DEFAULT_WB_PCT,
    GovernorConfig,
)
from memlat.sim.batch import worker_pool
from memlat.sim.policies import Memlat
from memlat.sim.run import SimSetup, make_setup
from memlat.sim.run import simulate as simulate_run
from memlat.sim.workload import Workload

optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own progress lines instead

#: protocol.md §2.4 knobs a trial may set on every IPM monitor of a group.
MONITOR_KNOBS = ("ipm_ceil", "fe_stall_floor", "be_stall_floor", "wb_pct", "ipm_filter",
                 "freq_scale_pct", "freq_scale_floor_mhz", "freq_scale_ceil_mhz")
#: group knobs: the map scale and the adaptive floors.
GROUP_KNOBS = ("map_scale", "adaptive_low", "adaptive_high")
DEFAULT_KNOBS = ("ipm_ceil", "be_stall_floor", "fe_stall_floor", "ipm_filter",
                 "freq_scale_pct", "map_scale", "sample_ms")
ALL_KNOBS = (*MONITOR_KNOBS, *GROUP_KNOBS, "sample_ms")
SAMPLE_MS_CHOICES = (2, 4, 8, 16)


class TuneError(MemlatError):
    """A tune cannot start or continue (bad option, empty workload set, storage)."""


# ---- the search space -----------------------------------------------------------------

def _group_key(g: Group) -> str:
    return g.key


def suggest(trial: optuna.trial.BaseTrial, soc: SocConfig,
            knobs: Sequence[str]) -> dict[str, Any]:
    """Draw one candidate's parameters from `trial` (names `<group>.<knob>` and
    `sample_ms`). Ranges (docs/tuning.md): ipm_ceil log-uniform 10..2e7 instructions per
    miss; stall floors 0..100 %; wb_pct 0..100 %; ipm_filter log 100..1e6; freq_scale_pct
    0..200 %; the boost band floor/ceil 0..5000 MHz; map_scale 0.25..1.5; adaptive floors
    an OPP index of the ladder (0: not sent)."""
    unknown = [k for k in knobs if k not in ALL_KNOBS]
    if unknown:
        raise TuneError(f"unknown knob(s) {', '.join(unknown)}; have {', '.join(ALL_KNOBS)}")
    params: dict[str, Any] = {}
    for g in soc.groups:
        if not any(not m.compute for m in g.monitors):
            continue
        p = _group_key(g)
        for knob in knobs:
            name = f"{p}.{knob}"
            if knob == "ipm_ceil":
                params[name] = trial.suggest_int(name, 10, 20_000_000, log=True)
            elif knob in ("fe_stall_floor", "be_stall_floor", "wb_pct"):
                params[name] = trial.suggest_int(name, 0, 100)
            elif knob == "ipm_filter":
                params[name] = trial.suggest_int(name, 100, 1_000_000, log=True)
            elif knob == "freq_scale_pct":
                params[name] = trial.suggest_int(name, 0, 200)
            elif knob in ("freq_scale_floor_mhz", "freq_scale_ceil_mhz"):
                params[name] = trial.suggest_int(name, 0, 5000, step=50)
            elif knob == "map_scale" and not g.is_level:
                params[name] = trial.suggest_float(name, 0.25, 1.5)
            elif knob in ("adaptive_low", "adaptive_high") and not g.is_level:
                params[name] = trial.suggest_int(name, 0, len(g.ladder))
    if "sample_ms" in knobs:
        params["sample_ms"] = trial.suggest_categorical("sample_ms", SAMPLE_MS_CHOICES)
    return params


#: what the firmware holds for a knob the agent never sent (decisions.md §2)
_FIRMWARE_DEFAULTS = {"fe_stall_floor": DEFAULT_FE_STALL_FLOOR, "wb_pct": DEFAULT_WB_PCT,
                      "ipm_filter": DEFAULT_IPM_FILTER,
                      "freq_scale_pct": DEFAULT_FREQ_SCALE_PCT,
                      "freq_scale_floor_mhz": DEFAULT_FREQ_SCALE_FLOOR_MHZ,
                      "freq_scale_ceil_mhz": DEFAULT_FREQ_SCALE_CEIL_MHZ}


def stock_params(soc: SocConfig, knobs: Sequence[str]) -> dict[str, Any]:
    """The parameters that reproduce `soc` itself (its first IPM monitor's values per
    group, firmware defaults for knobs it does not send, map scale 1, no adaptive
    floor), so the search always starts from, and never ends worse than, stock."""
    defaults = {**_FIRMWARE_DEFAULTS, "be_stall_floor": 1}  # v8 sends 1 for IPM monitors
    params: dict[str, Any] = {}
    for g in soc.groups:
        mons = [m for m in g.monitors if not m.compute]
        if not mons:
            continue
        m = mons[0]
        for knob in knobs:
            name = f"{g.key}.{knob}"
            if knob in MONITOR_KNOBS:
                value = getattr(m, knob)
                params[name] = defaults[knob] if value is None else value
            elif knob == "map_scale" and not g.is_level:
                params[name] = 1.0
            elif knob == "adaptive_low" and not g.is_level:
                params[name] = _ladder_index(g, g.adaptive_low_khz)
            elif knob == "adaptive_high" and not g.is_level:
                params[name] = _ladder_index(g, g.adaptive_high_khz)
    if "sample_ms" in knobs and soc.sample_ms in SAMPLE_MS_CHOICES:
        params["sample_ms"] = soc.sample_ms
    return params


def _ladder_index(g: Group, khz: int | None) -> int:
    return 0 if khz is None or khz not in g.ladder else g.ladder.index(khz) + 1


def apply(soc: SocConfig, params: dict[str, Any]) -> SocConfig:
    """`soc` with a candidate's parameters applied, re-validated (ConfigError names the
    field). Map values are scaled and snapped up to the group's ladder (whole MHz, as
    the wire carries them); adaptive index i > 0 is the i-th OPP (kHz)."""
    data = soc.model_dump()
    if "sample_ms" in params:
        data["sample_ms"] = int(params["sample_ms"])
    for g_data, g in zip(data["groups"], soc.groups, strict=True):
        p = _group_key(g)
        for m_data in g_data["monitors"]:
            if m_data["compute"]:
                continue
            for knob in MONITOR_KNOBS:
                value = params.get(f"{p}.{knob}")
                # a knob left unsent already holds the firmware default: keep it unsent
                if value is not None and not (m_data[knob] is None
                                              and int(value) == _FIRMWARE_DEFAULTS.get(knob)):
                    m_data[knob] = int(value)
            scale = params.get(f"{p}.map_scale")
            if scale is not None:
                m_data["map"] = [(cpu, _snap_mhz(g, mem * scale)) for cpu, mem in m_data["map"]]
        for side in ("low", "high"):
            idx = params.get(f"{p}.adaptive_{side}")
            if idx is not None:
                g_data[f"adaptive_{side}_khz"] = g.ladder[idx - 1] if idx else None
    return parse_soc(data, source=f"{soc.name} (tuned)")


def _snap_mhz(g: Group, mhz: float) -> int:
    """The lowest ladder OPP (whole MHz: kHz // 1000, as a device tree's OPP is read) at
    or above `mhz`, clamped to the ladder."""
    opps = sorted({khz // 1000 for khz in g.ladder})
    for opp in opps:
        if opp >= mhz - 1e-9:
            return opp
    return opps[-1]


# ---- evaluation -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Baseline:
    """One workload's reference runs: performance, stock memlat and the oracle (J, s)."""

    workload: str
    perf_j: float
    perf_s: float
    stock_j: float
    stock_s: float
    oracle_j: float
    oracle_s: float


@dataclass(frozen=True, slots=True)
class Score:
    """A configuration on a set of workloads: per-workload (energy J, time s), the energy
    ratio against performance and the worst slowdown (fraction, 0.05 = 5 %)."""

    runs: dict[str, tuple[float, float]]
    energy_ratio: float
    worst_slowdown: float


def score(runs: dict[str, tuple[float, float]], base: dict[str, Baseline]) -> Score:
    """Objectives of `runs` ((energy J, time s) by workload) against their baselines."""
    e = sum(runs[w][0] for w in runs)
    e_perf = sum(base[w].perf_j for w in runs)
    worst = max(runs[w][1] / base[w].perf_s - 1.0 for w in runs)
    return Score(runs, e / e_perf, worst)


@dataclass(frozen=True, slots=True)
class _Context:
    soc: str
    seed: int
    budget: float
    workloads: tuple[Workload, ...]


_CTX: dict[str, Any] = {}


def _setup(ctx: _Context) -> SimSetup:
    key = (ctx.soc, ctx.seed, ctx.budget)
    if _CTX.get("key") != key:
        _CTX["key"] = key
        _CTX["setup"] = make_setup(ctx.soc, seed=ctx.seed, oracle_budget=ctx.budget)
    setup: SimSetup = _CTX["setup"]
    return setup


def simulate(ctx: _Context, soc: SocConfig, names: Sequence[str],
             config: GovernorConfig | None = None) -> dict[str, tuple[float, float]]:
    """memlat with configuration `soc` (probed into an emulated CPUCP over SCMI once;
    `config` when that was already done) on the named workloads: (energy J, time s) by
    workload."""
    base = _setup(ctx)
    setup = dataclasses.replace(base, soc=soc)
    by_name = {w.name: w for w in ctx.workloads}
    policy = Memlat(soc, config)
    out: dict[str, tuple[float, float]] = {}
    for name in names:
        r = simulate_run(setup, by_name[name], policy, timeline=False)
        out[name] = (r.energy_j, r.time_s)
    return out


def _evaluate(job: tuple[_Context, dict[str, Any], tuple[str, ...]]
              ) -> tuple[str, dict[str, tuple[float, float]] | str]:
    """Worker entry: ("ok", runs) or ("pruned", the firmware's or the config's reason)."""
    ctx, params, names = job
    try:
        soc = apply(_setup(ctx).soc, params)
        config = programmed_governor(soc)  # refused by the firmware -> ProbeError
    except (ConfigError, ProbeError) as exc:
        return "pruned", str(exc)
    return "ok", simulate(ctx, soc, names, config)


def baselines(ctx: _Context, names: Sequence[str],
              mapper: Callable[..., Iterator[Any]] = map) -> dict[str, Baseline]:
    """Performance, stock memlat and oracle runs of each named workload."""
    jobs = [(ctx, name) for name in names]
    return {b.workload: b for b in mapper(_baseline, jobs)}


def _baseline(job: tuple[_Context, str]) -> Baseline:
    ctx, name = job
    workload = next(w for w in ctx.workloads if w.name == name)
    results, _ = run_workload(workload, ("performance", "memlat", "oracle"), _setup(ctx))
    by = {r.policy: r for r in results}
    return Baseline(name, by["performance"].energy_j, by["performance"].time_s,
                    by["memlat"].energy_j, by["memlat"].time_s,
                    by["oracle"].energy_j, by["oracle"].time_s)


# ---- one study --------------------------------------------------------------------------

@dataclass
class StudyResult:
    """A finished (or interrupted) study: every completed trial and the chosen one."""

    name: str
    train: tuple[str, ...]
    trials: list[optuna.trial.FrozenTrial]
    best: optuna.trial.FrozenTrial | None
    pruned: list[tuple[int, str]] = field(default_factory=list)

    def pareto(self) -> list[optuna.trial.FrozenTrial]:
        """Non-dominated completed trials (energy ratio, worst slowdown), by energy."""
        done = [t for t in self.trials if t.state == optuna.trial.TrialState.COMPLETE]
        front = [t for t in done if not any(_dominates(o, t) for o in done if o is not t)]
        return sorted(front, key=lambda t: t.values[0])


def _dominates(a: optuna.trial.FrozenTrial, b: optuna.trial.FrozenTrial) -> bool:
    return (a.values[0] <= b.values[0] and a.values[1] <= b.values[1]
            and tuple(a.values) != tuple(b.values))


@dataclass
class TuneOptions:
    """Options of a tune. budget: the worst slowdown allowed (fraction); trials per
    study; batch: candidates asked per round, simulated in parallel and told in order
    (the result depends on the seed and the batch, never on the number of workers);
    storage: an Optuna storage URL (None: in memory)."""

    soc: str
    budget: float = 0.05
    trials: int = 200
    knobs: tuple[str, ...] = DEFAULT_KNOBS
    seed: int = 0
    workers: int = 1
    batch: int = 8
    storage: str | None = None
    study_prefix: str = "memlat-tune"
    folds: int = 3
    dask_scheduler: str | None = None


def run_study(opts: TuneOptions, ctx: _Context, result: StudyResult,
              base: dict[str, Baseline], pool: Executor | None,
              on_trial: Callable[[StudyResult], None] | None = None) -> StudyResult:
    """Tune on `result.train` until `opts.trials` trials exist in study `result.name`
    (resuming a stored one), keeping `result` current after every batch.
    KeyboardInterrupt propagates after the finished trials were told and `result`
    refreshed, so the caller keeps what was found."""
    name, train = result.name, result.train
    sampler = optuna.samplers.TPESampler(seed=opts.seed, multivariate=True,
                                         n_startup_trials=min(20, max(4, opts.trials // 5)))
    study = optuna.create_study(study_name=name, storage=opts.storage, sampler=sampler,
                                directions=["minimize", "minimize"], load_if_exists=True)
    soc = _setup(ctx).soc
    if not study.trials:  # the stock configuration is always candidate 0
        study.enqueue_trial(stock_params(soc, opts.knobs))
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)  # left by an interrupt
    batch = max(1, opts.batch)
    try:
        while True:
            finished = [t for t in study.get_trials(deepcopy=False)
                        if t.state != optuna.trial.TrialState.FAIL]
            left = opts.trials - len(finished)
            if left <= 0:
                break
            asked = [study.ask() for _ in range(min(batch, left))]
            params = [suggest(t, soc, opts.knobs) for t in asked]
            jobs = [(ctx, p, tuple(train)) for p in params]
            outcomes = list(pool.map(_evaluate, jobs) if pool is not None
                            else map(_evaluate, jobs))
            for trial, (kind, value) in zip(asked, outcomes, strict=True):
                if kind == "pruned":
                    trial.set_user_attr("pruned", str(value))
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    continue
                assert isinstance(value, dict)
                s = score(value, base)
                trial.set_constraint("slowdown_over_budget", s.worst_slowdown - opts.budget)
                trial.set_user_attr("runs", {w: list(v) for w, v in value.items()})
                study.tell(trial, [s.energy_ratio, s.worst_slowdown])
            _refresh(result, study, opts)
            if on_trial is not None:
                on_trial(result)
    except KeyboardInterrupt:
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        _refresh(result, study, opts)
        raise
    _refresh(result, study, opts)
    return result


def _refresh(result: StudyResult, study: optuna.Study, opts: TuneOptions) -> None:
    result.trials = study.get_trials()
    result.pruned = [(t.number, str(t.user_attrs.get("pruned", "")))
                     for t in result.trials if t.state == optuna.trial.TrialState.PRUNED]
    feasible = [t for t in result.trials if t.state == optuna.trial.TrialState.COMPLETE
                and t.values[1] <= opts.budget + 1e-12]
    result.best = min(feasible, key=lambda t: (t.values[0], t.values[1], t.number),
                      default=None)


# ---- the whole tune ---------------------------------------------------------------------

@dataclass
class FoldResult:
    """One fold: tuned on `study.train`, scored on `held_out` (None when no trial fit
    the budget)."""

    study: StudyResult
    held_out: tuple[str, ...]
    held_out_score: Score | None


@dataclass
class TuneResult:
    """Everything a tune found: baselines, folds, the final study, the configurations."""

    opts: TuneOptions
    stock: SocConfig
    baselines: dict[str, Baseline]
    folds: list[FoldResult]
    final: StudyResult
    tuned: SocConfig | None
    interrupted: bool = False

    def gap_recovered(self, names: Sequence[str], runs: dict[str, tuple[float, float]]
                      ) -> float:
        """Share of the stock-to-oracle energy gap that `runs` closes on `names` (1 = all
        of it; negative: worse than stock)."""
        stock = sum(self.baselines[w].stock_j for w in names)
        oracle = sum(self.baselines[w].oracle_j for w in names)
        tuned = sum(runs[w][0] for w in names)
        return (stock - tuned) / (stock - oracle) if stock > oracle else 0.0

    def held_out(self) -> tuple[dict[str, tuple[float, float]], list[str]]:
        """Every held-out run of every fold (by workload) and the workloads covered."""
        runs: dict[str, tuple[float, float]] = {}
        for f in self.folds:
            if f.held_out_score is not None:
                runs.update(f.held_out_score.runs)
        return runs, sorted(runs)


def split_folds(names: Sequence[str], k: int, seed: int) -> list[tuple[tuple[str, ...],
                                                                       tuple[str, ...]]]:
    """k (train, held-out) splits of `names`, shuffled with `seed`; k <= 1 or fewer than
    two workloads: no folds."""
    names = list(names)
    if k <= 1 or len(names) < 2:
        return []
    k = min(k, len(names))
    order = sorted(names)
    rng = random.Random(seed)
    rng.shuffle(order)
    folds = [tuple(order[i::k]) for i in range(k)]
    return [(tuple(w for w in order if w not in held), held) for held in folds]


@contextlib.contextmanager
def _pool(opts: TuneOptions) -> Iterator[Executor | None]:
    if opts.dask_scheduler is not None:
        from dask.distributed import Client  # optional extra: memlat[dask]

        client = Client(opts.dask_scheduler)
        try:
            yield client.get_executor()
        finally:
            client.close()
    elif opts.workers > 1:
        with worker_pool(opts.workers) as pool:
            yield pool
    else:
        yield None


def check_options(opts: TuneOptions, workloads: Sequence[Workload]) -> None:
    """Refuse options no tune can run with (TuneError naming the option)."""
    if not workloads:
        raise TuneError("no workloads to tune on")
    if not 0 < opts.budget < 1:
        raise TuneError(f"--budget must be a fraction in (0, 1), got {opts.budget}")
    if opts.trials < 1:
        raise TuneError(f"--trials must be at least 1, got {opts.trials}")
    if opts.batch < 1 or opts.workers < 1:
        raise TuneError("--batch and --workers must be at least 1")
    unknown = [k for k in opts.knobs if k not in ALL_KNOBS]
    if unknown or not opts.knobs:
        raise TuneError(f"unknown knob(s) {', '.join(unknown) or '(none)'}; have "
                        f"{', '.join(ALL_KNOBS)}")


def settings_key(opts: TuneOptions, workloads: Sequence[Workload]) -> str:
    """A short digest of everything that decides a trial's score (SoC, workloads as
    given, budget, knobs, seed, batch, folds): part of the study names, so a stored study
    is resumed only by a tune with the same settings, never mixed with another's."""
    data = {"soc": opts.soc, "budget": opts.budget, "knobs": list(opts.knobs),
            "seed": opts.seed, "batch": opts.batch, "folds": opts.folds,
            "workloads": [w.model_dump(mode="json") for w in workloads]}
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def tune(opts: TuneOptions, workloads: Sequence[Workload],
         on_trial: Callable[[str, StudyResult], None] | None = None) -> TuneResult:
    """Baselines, k-fold studies scored on held-out workloads, then the final study on
    every workload. Ctrl-C stops early and returns what was found (interrupted=True)."""
    check_options(opts, workloads)
    ctx = _Context(opts.soc, opts.seed, opts.budget, tuple(workloads))
    stock = _setup(ctx).soc
    names = [w.name for w in workloads]
    folds: list[FoldResult] = []
    interrupted = False
    final = StudyResult(f"{opts.study_prefix}-all", tuple(names), [], None)
    base: dict[str, Baseline] = {}
    try:
        with _pool(opts) as pool:
            base = baselines(ctx, names, pool.map if pool is not None else map)
            for i, (train, held) in enumerate(split_folds(names, opts.folds, opts.seed)):
                study = StudyResult(f"{opts.study_prefix}-fold{i}", train, [], None)
                run_study(opts, ctx, study, base, pool, _named(on_trial, study.name))
                folds.append(FoldResult(study, held, _held_out(ctx, study, held, base)))
            run_study(opts, ctx, final, base, pool, _named(on_trial, final.name))
    except KeyboardInterrupt:
        if not base:  # nothing to report before the baselines exist
            raise
        interrupted = True
    tuned = apply(stock, final.best.params) if final.best is not None else None
    return TuneResult(opts, stock, base, folds, final, tuned, interrupted)


def _named(on_trial: Callable[[str, StudyResult], None] | None,
           name: str) -> Callable[[StudyResult], None] | None:
    if on_trial is None:
        return None
    return lambda result: on_trial(name, result)


def _held_out(ctx: _Context, study: StudyResult, held: Sequence[str],
              base: dict[str, Baseline]) -> Score | None:
    if study.best is None:
        return None
    soc = apply(_setup(ctx).soc, study.best.params)
    return score(simulate(ctx, soc, held), base)
