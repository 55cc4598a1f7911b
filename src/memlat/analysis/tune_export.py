"""Hand a tuned configuration back in the three forms a user applies it in.

* a SoC profile YAML (`memlat run/probe --soc FILE` loads it);
* a device-tree overlay for the `qcom,scmi-memlat` binding: label references (`&memlat`,
  `&memlat_ddr`, ...) that refine the SoC's .dtsi, the way a board .dts retunes it; map
  rows reference the base tree's OPP labels;
* the SCMI commands a driver would send that differ from the stock probe (the QCOM
  SET_PARAM payloads, protocol.md §3.5 of the project specification).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from devicetree import dtlib

from memlat.agent.probe import ProbeMessage, build_sequence
from memlat.analysis.tune import TuneResult
from memlat.config.dt import parse_dts
from memlat.config.model import Monitor, SocConfig
from memlat.errors import ConfigError
from memlat.qcom.codec import describe_request
from memlat.qcom.dialect import Dialect

#: monitor field -> (binding property, unit factor to the property's value)
_MONITOR_PROPS: dict[str, tuple[str, int]] = {
    "ipm_ceil": ("qcom,ipm-ceil", 1),
    "be_stall_floor": ("qcom,be-stall-floor-percent", 1),
    "fe_stall_floor": ("qcom,fe-stall-floor-percent", 1),
    "wb_pct": ("qcom,wb-percent", 1),
    "ipm_filter": ("qcom,ipm-filter", 1),
    "freq_scale_pct": ("qcom,freq-scale-percent", 1),
    "freq_scale_floor_mhz": ("qcom,freq-scale-floor-hz", 1_000_000),
    "freq_scale_ceil_mhz": ("qcom,freq-scale-ceil-hz", 1_000_000),
}
_HZ_PROPS = {"qcom,freq-scale-floor-hz", "qcom,freq-scale-ceil-hz"}


def profile_yaml(soc: SocConfig, *, comment: str = "") -> str:
    """`soc` as a SoC profile YAML file that `load_profile_file` reads back unchanged."""
    head = "".join(f"# {line}\n" for line in comment.splitlines())
    body = yaml.safe_dump(soc.model_dump(mode="json", exclude_none=True), sort_keys=False)
    return head + body


@dataclass(frozen=True, slots=True)
class CommandChange:
    """One command of the tuned probe that the stock probe does not send as is."""

    message: ProbeMessage
    stock_payload: bytes | None  # None: the stock probe has no such command

    def describe(self, dialect: Dialect) -> str:
        """`SET_PARAM IPM_CEIL ddr/mon_0: hw=ddr mon=0 val=400 (was 20000000)`-style line."""
        text = describe_request(self.message.payload, dialect)
        where = f" {self.message.where}" if self.message.where else ""
        if self.stock_payload is None:
            return f"{self.message.param}{where}: {text} (new)"
        return (f"{self.message.param}{where}: {text} "
                f"(was {describe_request(self.stock_payload, dialect)})")


def command_changes(stock: SocConfig, tuned: SocConfig,
                    dialect: Dialect | str | None = None) -> list[CommandChange]:
    """The tuned probe's commands whose payload differs from the stock probe's (matched
    by param and group/monitor), in send order."""
    d = Dialect(dialect or stock.dialect)
    before = {(m.param_id, m.where): m.payload for m in build_sequence(stock, d)}
    out = []
    for msg in build_sequence(tuned, d):
        old = before.get((msg.param_id, msg.where))
        if old != msg.payload:
            out.append(CommandChange(msg, old))
    return out


def commands_text(changes: Sequence[CommandChange], dialect: Dialect | str) -> str:
    """One line per changed command: the decoded request and its payload in hex."""
    d = Dialect(dialect)
    lines = [f"# {len(changes)} QCOM command(s) differ from the stock probe ({d.value})"]
    for c in changes:
        lines.append(f"{c.message.message_id:#04x} {c.describe(d)}")
        lines.append(f"     payload {c.message.payload.hex()}")
    return "\n".join(lines) + "\n"


# ---- device-tree overlay ------------------------------------------------------------------

def _label(node: dtlib.Node, what: str) -> str:
    if not node.labels:
        raise ConfigError(f"{what} {node.path} has no label, so an overlay cannot refer to "
                          "it; add a label in the base device tree", source=node.path)
    return node.labels[0]


def _memlat_node(dt: dtlib.DT) -> dtlib.Node:
    for node in dt.node_iter():
        compat = node.props.get("compatible")
        if compat is not None and b"qcom,scmi-memlat" in compat.value:
            return node
    raise ConfigError("no node compatible with qcom,scmi-memlat", location="memlat")


def _opp_mhz(node: dtlib.Node) -> int | None:
    for prop, per_khz in (("opp-hz", 1000), ("opp-peak-kBps", None)):
        if prop in node.props:
            raw = int.from_bytes(node.props[prop].value, "big")
            return raw // per_khz // 1000 if per_khz else raw // 4 // 1000
    if "opp-level" in node.props:
        return int.from_bytes(node.props["opp-level"].value, "big")
    return None


def dt_overlay(stock: SocConfig, tuned: SocConfig, base_dts: Path | str) -> str:
    """Label-reference overlay of `base_dts` (which must describe `stock` in the
    qcom,scmi-memlat binding) carrying what `tuned` changes: sample period, per-monitor
    knobs and maps. Raises ConfigError naming the node a reference needs a label on, or a
    change the binding cannot express."""
    dt = parse_dts(base_dts)
    memlat = _memlat_node(dt)
    out = ["/* memlat tune: overlay on " + Path(base_dts).name + " */", ""]
    if tuned.sample_ms != stock.sample_ms or tuned.freq_method != stock.freq_method:
        out += [f"&{_label(memlat, 'memlat node')} {{",
                f"\tqcom,sample-period-ms = <{tuned.sample_ms}>;",
                f"\tqcom,effective-freq-method = <{tuned.freq_method}>;", "};", ""]
    gnodes = {int.from_bytes(n.props["reg"].value[:4], "big"): n
              for n in memlat.nodes.values() if "reg" in n.props}
    for gs, gt in zip(stock.groups, tuned.groups, strict=True):
        if (gs.adaptive_low_khz, gs.adaptive_high_khz) != (gt.adaptive_low_khz,
                                                           gt.adaptive_high_khz):
            raise ConfigError(f"group {gt.name}: the qcom,scmi-memlat binding has no "
                              "adaptive floor property; apply it with the profile or the "
                              "SCMI commands", location=f"{gt.name}.adaptive")
        gnode = gnodes.get(gt.hw_type)
        if gnode is None:
            raise ConfigError(f"no group node with reg = <{gt.hw_type}> under {memlat.path}")
        mnodes = [n for name, n in gnode.nodes.items() if name.startswith("monitor-")]
        body: list[str] = []
        for idx, (ms, mt) in enumerate(zip(gs.monitors, gt.monitors, strict=True)):
            lines = _monitor_lines(ms, mt, mnodes[idx], gnode)
            if lines:
                body += [f"\tmonitor-{idx} {{", *(f"\t\t{ln}" for ln in lines), "\t};"]
        if body:
            out += [f"&{_label(gnode, 'group node')} {{", *body, "};", ""]
    return "\n".join(out)


def _monitor_lines(ms: Monitor, mt: Monitor, mnode: dtlib.Node,
                   gnode: dtlib.Node) -> list[str]:
    lines = []
    for fld, (prop, factor) in _MONITOR_PROPS.items():
        new = getattr(mt, fld)
        if new is None or new == getattr(ms, fld):
            continue
        value = new * factor
        lines.append(f"{prop} = /bits/ 64 <{value}>;" if prop in _HZ_PROPS
                     else f"{prop} = <{value}>;")
    old_map, new_map = ms.map, mt.map
    if old_map != new_map:
        pairs = mnode.props["qcom,cpu-mem-opps"].to_nodes()
        table = gnode.props["operating-points-v2"].to_node()
        by_mhz = {_opp_mhz(o): o for o in table.nodes.values()}
        rows = []
        for ri, (_cpu, mem) in enumerate(new_map):
            cpu_opp = pairs[2 * ri]
            bus_opp = by_mhz.get(mem)
            if bus_opp is None:
                raise ConfigError(f"{mem} MHz is no OPP of {table.path}", source=table.path)
            rows.append(f"<&{_label(cpu_opp, 'CPU OPP')} &{_label(bus_opp, 'bus OPP')}>")
        lines.append("qcom,cpu-mem-opps = " + ",\n\t\t\t".join(rows) + ";")
    return lines


# ---- the output folder ----------------------------------------------------------------

def _pct(x: float) -> str:
    return f"{100 * x:+.1f} %"


def summary_markdown(result: TuneResult, command: str) -> str:
    """The tune report: verdict on held-out workloads first, then per-workload table
    (stock, tuned, oracle), the Pareto front and the settings."""
    opts = result.opts
    lines = [f"# memlat tune: {result.stock.name}, budget {100 * opts.budget:.1f} % slowdown",
             ""]
    held_runs, held = result.held_out()
    if held:
        rec = result.gap_recovered(held, held_runs)
        worst = max(held_runs[w][1] / result.baselines[w].perf_s - 1 for w in held)
        lines += [f"**Held-out workloads** ({', '.join(held)}; each scored by the "
                  f"configuration tuned without it): the tuned configurations recover "
                  f"**{100 * rec:.0f} %** of the energy gap between stock memlat and the "
                  f"oracle, worst slowdown {100 * worst:.1f} %.", ""]
    else:
        lines += ["No held-out figure: fewer than two workloads or --folds 1.", ""]
    if result.tuned is None or result.final.best is None:
        lines += ["No configuration met the slowdown budget on every workload; the stock "
                  "configuration stays.", ""]
    else:
        runs = {w: tuple(v) for w, v in result.final.best.user_attrs["runs"].items()}
        lines += [f"**Final configuration** (trial {result.final.best.number}, tuned on all "
                  f"workloads): energy {result.final.best.values[0]:.4f} x performance, "
                  f"worst slowdown {100 * result.final.best.values[1]:.2f} %; training fit "
                  f"recovers {100 * result.gap_recovered(list(runs), runs):.0f} % of the gap.",
                  "", "| workload | perf J | stock J (slowdown) | tuned J (slowdown) | "
                  "oracle J (slowdown) |", "|---|---|---|---|---|"]
        for w, b in result.baselines.items():
            t = runs.get(w)
            tuned = f"{t[0]:.3f} ({_pct(t[1] / b.perf_s - 1)})" if t else "-"
            lines.append(f"| {w} | {b.perf_j:.3f} | {b.stock_j:.3f} "
                         f"({_pct(b.stock_s / b.perf_s - 1)}) | {tuned} | {b.oracle_j:.3f} "
                         f"({_pct(b.oracle_s / b.perf_s - 1)}) |")
        lines += ["", "Parameters: " + ", ".join(f"`{k}={v}`" for k, v in
                                                  sorted(result.final.best.params.items()))]
    lines += ["", f"Trials: {len(result.final.trials)} in the final study, "
              f"{len(result.final.pruned)} pruned (refused by the firmware or the "
              f"configuration checks); folds: {len(result.folds)}.",
              "", "Reproduce: `" + command + "`", ""]
    if result.final.pruned:
        lines += ["First pruned trials:", ""]
        lines += [f"- trial {n}: {why}" for n, why in result.final.pruned[:5]]
        lines.append("")
    if result.interrupted:
        lines += ["*Interrupted (Ctrl-C): the figures cover the trials finished before it.*",
                  ""]
    return "\n".join(lines)


def pareto_plot(result: TuneResult, path: Path) -> None:
    """Energy (x performance) against worst slowdown: every trial, the Pareto front, the
    budget line, stock memlat and the chosen configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [t for t in result.final.trials if t.values is not None]
    front = result.final.pareto()
    base = result.baselines
    e_perf = sum(b.perf_j for b in base.values())
    stock_e = sum(b.stock_j for b in base.values()) / e_perf
    stock_s = max(b.stock_s / b.perf_s - 1 for b in base.values())
    oracle_e = sum(b.oracle_j for b in base.values()) / e_perf
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.scatter([100 * t.values[1] for t in done], [t.values[0] for t in done], s=12,
               color="0.7", label="trials")
    ax.plot([100 * t.values[1] for t in front], [t.values[0] for t in front], "o-",
            color="tab:blue", ms=4, label="Pareto front")
    ax.axvline(100 * result.opts.budget, color="tab:red", ls="--", lw=1, label="budget")
    ax.axhline(oracle_e, color="tab:green", ls=":", lw=1, label="oracle (energy)")
    ax.plot([100 * stock_s], [stock_e], "s", color="black", label="stock memlat")
    if result.final.best is not None:
        b = result.final.best
        ax.plot([100 * b.values[1]], [b.values[0]], "*", ms=14, color="tab:orange",
                label="chosen")
    ax.set_xlabel("worst slowdown vs performance (%)")
    ax.set_ylabel("energy / energy of performance")
    ax.set_title(f"memlat tune on {result.stock.name}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_outputs(result: TuneResult, out: Path, *, command: str,
                  base_dts: Path | None) -> list[Path]:
    """Write the tune's files into the folder `out` (which exists): summary.md,
    tune.json, pareto.csv, pareto.png and, when a configuration was chosen,
    tuned-profile.yaml, scmi-commands.txt and tuned-overlay.dtsi (with a base tree)."""
    written = []

    def put(name: str, text: str) -> None:
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)

    put("summary.md", summary_markdown(result, command))
    front = result.final.pareto()
    put("pareto.csv", "trial,energy_ratio,worst_slowdown\n" + "".join(
        f"{t.number},{t.values[0]:.6f},{t.values[1]:.6f}\n" for t in front))
    pareto_plot(result, out / "pareto.png")
    written.append(out / "pareto.png")
    summary: dict[str, Any] = {
        "soc": result.stock.name, "budget": result.opts.budget,
        "trials": len(result.final.trials), "pruned": len(result.final.pruned),
        "interrupted": result.interrupted,
        "baselines": {w: dataclasses.asdict(b) for w, b in result.baselines.items()},
        "folds": [{"train": list(f.study.train), "held_out": list(f.held_out),
                   "params": f.study.best.params if f.study.best else None,
                   "runs": f.held_out_score.runs if f.held_out_score else None}
                  for f in result.folds],
        "best": None,
    }
    held_runs, held = result.held_out()
    if held:
        summary["held_out_gap_recovered"] = result.gap_recovered(held, held_runs)
    if result.final.best is not None and result.tuned is not None:
        best = result.final.best
        summary["best"] = {"trial": best.number, "params": best.params,
                           "energy_ratio": best.values[0], "worst_slowdown": best.values[1]}
        put("tuned-profile.yaml", profile_yaml(
            result.tuned, comment=f"memlat tune: {command}\ntrial {best.number}"))
        put("scmi-commands.txt", commands_text(
            command_changes(result.stock, result.tuned), result.stock.dialect))
        if base_dts is not None:
            try:
                put("tuned-overlay.dtsi", dt_overlay(result.stock, result.tuned, base_dts))
            except ConfigError as exc:
                put("tuned-overlay.txt", f"no device-tree overlay: {exc}\n")
    put("tune.json", json.dumps(summary, indent=2, default=float) + "\n")
    return written
