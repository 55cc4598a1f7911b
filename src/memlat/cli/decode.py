"""`memlat decode FILE`: decode the SCMI traffic of a kernel trace (docs/decode.md).

Reads /sys/kernel/tracing/trace text, `trace-cmd report` output or memlat's own
`platform serve` log; prints every SCMI message decoded (or one JSON object per message
with --json), then, on request, the check against an emulated CPUCP, the reconstructed
profile and its diff against a built-in, the devfreq timelines and trans_stat, the
comparison with a counter trace, and a Perfetto trace. Exit status: 0, 1 when --check
finds a problem, 2 for bad input.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add `memlat decode` to `app`."""

    @app.command("decode")
    def decode_cmd(
        file: Path = typer.Argument(..., help="ftrace text, trace-cmd report or a "
                                    "memlat platform serve log."),
        json_out: bool = typer.Option(False, "--json", help="One JSON object per message "
                                      "(then per finding / comparison)."),
        soc: str | None = typer.Option(None, "--soc", help="SoC profile for --check, "
                                       "--diff, --profile-out and devfreq (default: the "
                                       "built-in whose probe matches the trace)."),
        soc_file: Path | None = typer.Option(None, "--soc-file", help="SoC profile YAML "
                                             "instead of --soc."),
        check: bool = typer.Option(False, "--check", help="Replay the commands into an "
                                   "emulated CPUCP and report refusals and disagreements."),
        profile_out: Path | None = typer.Option(None, "--profile-out", help="Write the "
                                                "programmed configuration as a profile YAML."),
        include_refused: bool = typer.Option(False, "--include-refused", help="Rebuild the "
                                             "profile from every SET sent, refused ones too."),
        diff: bool = typer.Option(False, "--diff", help="Diff the programmed configuration "
                                  "against the built-in profile."),
        counters: Path | None = typer.Option(None, "--counters", help="Counter trace of the "
                                             "same period (default: <stem>.counters.csv or "
                                             "counters.csv next to FILE)."),
        counters_start: float | None = typer.Option(
            None, "--counters-start", help="Trace time (s) of the counter trace's first "
            "window (default: the START_TIMER reply)."),
        perfetto: Path | None = typer.Option(None, "--perfetto", help="Write a Perfetto "
                                             "trace (open it in ui.perfetto.dev)."),
    ) -> None:
        """Decode every SCMI message of a kernel trace; optionally check, rebuild, compare."""
        from memlat.errors import MemlatError

        try:
            code = _run(file, json_out, soc, soc_file, check, profile_out, include_refused,
                        diff, counters, counters_start, perfetto)
        except MemlatError as exc:
            typer.echo(f"memlat decode: {exc}", err=True)
            raise typer.Exit(2) from exc
        if code:
            raise typer.Exit(code)


def _refuse_existing(path: Path, what: str, allow_perfetto: bool = False) -> None:
    from memlat.errors import ConfigError

    if not path.exists():
        return
    if allow_perfetto and path.is_file():
        with path.open("rb") as fh:
            if fh.read(1) == b"\x0a":  # field 1 (Trace.packet), length-delimited
                return
    raise ConfigError(f"{what} exists and was not written by memlat; not overwriting",
                      source=str(path))


def _run(file: Path, json_out: bool, soc_name: str | None, soc_file: Path | None,
         check: bool, profile_out: Path | None, include_refused: bool, diff: bool,
         counters_path: Path | None, counters_start: float | None,
         perfetto: Path | None) -> int:
    from memlat.analysis.decode import (
        decode_file,
        find_counters,
        programmed,
        sampling_start_ns,
    )
    from memlat.analysis.decode.check import check_trace
    from memlat.analysis.decode.devfreq import compare, timelines, trans_stat
    from memlat.analysis.decode.reconstruct import diff_profiles, match_profile, reconstruct
    from memlat.analysis.decode.render import message_line, summary
    from memlat.config.profiles import load_profile, load_profile_file
    from memlat.errors import ConfigError

    if profile_out is not None:
        _refuse_existing(profile_out, "--profile-out file")
    if perfetto is not None:
        _refuse_existing(perfetto, "--perfetto file", allow_perfetto=True)
    result = decode_file(file)
    echo = typer.echo
    if json_out:
        for m in result.messages:
            echo(json.dumps(m.as_json()))
    else:
        for line in summary(result, str(file)):
            echo(line)
        for m in result.messages:
            echo(message_line(m))

    base = None
    base_note = ""
    if soc_file is not None:
        base = load_profile_file(soc_file)
    elif soc_name is not None:
        base = load_profile(soc_name)
    elif result.qcom():
        name, score = match_profile([m.request_payload for m in result.qcom()], result.dialect)
        if name is not None:
            base = load_profile(name)
            base_note = (f"SoC: {name} (built-in profile matching {score}/"
                         f"{len(result.qcom())} QCOM commands; --soc to choose)")
    if base_note and not json_out:
        echo(base_note)

    code = 0
    if check:
        if base is None:
            raise ConfigError("--check needs a SoC: no built-in profile matches the trace; "
                              "give --soc or --soc-file", location="--check")
        report = check_trace(result, base)
        if json_out:
            for f in report.findings:
                echo(json.dumps(f.as_json()))
        else:
            echo(report.summary())
            for f in report.findings:
                echo(f"  {f.kind}: {f.text}")
        bad = [f for f in report.findings
               if not (f.kind == "after-failure" and report.expected_after_failure)]
        code = 1 if bad else 0

    rebuilt = None
    if profile_out is not None or diff:
        rebuilt = reconstruct(programmed(result, include_refused=include_refused), base,
                              source=str(file))
        if profile_out is not None:
            try:
                profile_out.write_text(rebuilt.yaml(), encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot write: {exc.strerror}", source=str(profile_out)) from exc
            if not json_out:
                echo(f"profile: {profile_out} ({rebuilt.soc.command_count()} QCOM commands "
                     f"in {rebuilt.soc.dialect})")
        if diff:
            if base is None:
                raise ConfigError("--diff needs a built-in profile: give --soc",
                                  location="--diff")
            lines = diff_profiles(rebuilt.soc, base)
            if json_out:
                for line in lines:
                    echo(json.dumps({"kind": "profile-diff", "against": base.name,
                                     "text": line}))
            else:
                echo(f"diff against built-in {base.name}: "
                     f"{len(lines) or 'no'} difference{'s' if len(lines) != 1 else ''}")
                for line in lines:
                    echo(f"  {line}")
        for note in rebuilt.notes:
            typer.echo(f"memlat decode: {note}", err=True)

    tls = timelines(result.devfreq)
    if counters_path is not None and not tls:
        typer.echo("memlat decode: --counters given but the trace has no devfreq_frequency "
                   "event to compare with", err=True)
    soc_for_devfreq = rebuilt.soc if rebuilt is not None else base
    counter_trace = None
    start_ns = 0
    if tls:
        stamps = [m.t_ns for m in result.messages if m.t_ns is not None]
        stamps += [e.where.ts_ns for e in result.devfreq if e.where.ts_ns is not None]
        t_first, t_last = min(stamps), max(stamps)
        if not json_out:
            for name, tl in tls.items():
                echo(f"devfreq {name}: {len(tl.t_ns)} changes, "
                     f"{tl.initial_hz} Hz -> {tl.freq_hz[-1]} Hz")
                echo(trans_stat(tl, t_first, t_last, soc_for_devfreq).rstrip("\n"))
        counters_path = counters_path or find_counters(file)
        if counters_path is not None:
            if soc_for_devfreq is None:
                raise ConfigError("comparing with a counter trace needs the programmed "
                                  "profile: give --soc", location="--counters")
            from memlat.agent.offline import programmed_governor
            from memlat.traces import read_trace

            counter_trace = read_trace(counters_path,
                                       ncpus=programmed_governor(soc_for_devfreq).ncpus)
            started = sampling_start_ns(result)
            start_ns = (round(counters_start * 1e9) if counters_start is not None
                        else started if started is not None else t_first)
            for comp in compare(tls, soc_for_devfreq, counter_trace, start_ns):
                echo(json.dumps(comp.as_json()) if json_out else comp.describe())
    if perfetto is not None:
        from memlat.analysis.decode.perfetto import write_decode_trace

        write_decode_trace(perfetto, result, tls, soc=soc_for_devfreq, counters=counter_trace,
                           counters_start_ns=start_ns)
        if not json_out:
            echo(f"perfetto: {perfetto} (open it in ui.perfetto.dev)")
    return code
