"""`memlat probe`: probe a platform through the agent and print the SCMI message log.

Contract: decisions.md §5. `--json` prints one object per line per SCMI command sent,
with keys protocol, message_id, token, status, payload, reply. By default only the QCOM
commands of the probe sequence are printed (SET/GET/START/STOP of protocol 0x80, i.e.
protocol.md §3.5's 70 lines on x1e80100, plus a STOP_TIMER when a failure after
START_TIMER made the agent stop the loop); `--all` adds the base-protocol discovery and
PROTOCOL_VERSION(0x80) that precede them. Exit status 0 when every command succeeded and
the firmware runs, 1 otherwise (the log is printed either way).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from memlat.qcom.dialect import Dialect
    from memlat.scmi.agent import Exchange


def register(app: typer.Typer) -> None:
    """Add `memlat probe` to `app`."""

    @app.command()
    def probe(
        soc: str | None = typer.Option(None, "--soc", help="SoC profile name (default "
                                       "x1e80100 when no --dts is given)."),
        dts: Path | None = typer.Option(None, "--dts", help="Device tree (RFC memlat node)."),
        soc_file: Path | None = typer.Option(None, "--soc-file", help="SoC profile YAML "
                                             "(e.g. one `memlat decode --profile-out` wrote)."),
        dialect: str | None = typer.Option(None, "--dialect",
                                           help="Wire dialect: v8 or rfc2024."),
        transport: str = typer.Option("inproc", "--transport",
                                      help="inproc, unix:PATH, shm:PATH or raw:DIR."),
        json_out: bool = typer.Option(False, "--json", help="One JSON object per command."),
        all_messages: bool = typer.Option(False, "--all",
                                          help="Also print base discovery traffic."),
        on_error: str | None = typer.Option(None, "--on-error", help="abort (v8 default) or "
                                            "continue (rfc2024 default)."),
    ) -> None:
        """Probe a platform: discovery, PROTOCOL_VERSION(0x80), the QCOM sequence."""
        from memlat.agent.probe import iter_qcom
        from memlat.agent.session import open_session
        from memlat.config.profiles import load_profile_file
        from memlat.errors import ConfigError, MemlatError

        if on_error not in (None, "abort", "continue"):
            raise typer.BadParameter("must be abort or continue", param_hint="--on-error")
        try:
            if soc_file is not None:
                if soc or dts:
                    raise ConfigError("give --soc-file alone, not with --soc or --dts",
                                      location="--soc-file")
                loaded = load_profile_file(soc_file)
                session = open_session(soc=loaded if dialect is None
                                       else loaded.with_dialect(dialect), dialect=dialect,
                                       transport=transport)
            else:
                session = open_session(soc=soc, dts=dts, dialect=dialect, transport=transport)
        except MemlatError as exc:
            typer.echo(f"memlat probe: {exc}", err=True)
            raise typer.Exit(2) from exc
        try:
            for warning in session.soc.warnings:  # e.g. x1p42100's static masks
                typer.echo(f"memlat probe: warning: {warning}", err=True)
            result = session.probe(on_error=on_error)  # type: ignore[arg-type]
        finally:
            session.close()
        shown = result.exchanges if all_messages else list(iter_qcom(result.exchanges))
        if json_out:
            for ex in shown:
                typer.echo(json.dumps(ex.as_json()))
        else:
            _print_table(shown, result.dialect, _message_numbers(result))
        for note in result.notes:
            typer.echo(f"memlat probe: {note}", err=True)
        for failure in result.failures:
            typer.echo(f"memlat probe: {failure.describe()}", err=True)
        typer.echo(result.summary(), err=True)
        if not result.ok:
            raise typer.Exit(1)


def _message_numbers(result: object) -> dict[int, int]:
    """id(exchange) -> its message number in the probe sequence (protocol.md §3.5
    numbering, the one failures cite as `message N`); the STOP_TIMER sent after an abort
    gets the number after the last message."""
    stop = getattr(result, "stop_exchange", None)
    messages = getattr(result, "messages", [])
    numbers = {id(ex): msg.index for ex, msg in zip(getattr(result, "sequence", []), messages,
                                                    strict=False) if ex is not stop}
    if stop is not None:
        numbers[id(stop)] = len(messages) + 1
    return numbers


def _print_table(exchanges: list[Exchange], dialect: Dialect,
                 numbers: dict[int, int]) -> None:
    """One line per exchange: message number (as failures cite it; `-` for discovery),
    SCMI token, protocol/message id, status, decoded request."""
    from memlat.qcom.codec import describe_request
    from memlat.qcom.ids import PROTOCOL_ID
    from memlat.scmi.status import Status

    typer.echo(f"{'msg':>4} {'token':>5} {'prot/id':<9} {'status':<24s} request")
    for ex in exchanges:
        status = ex.error if ex.status is None else Status.describe(ex.status)
        what = (describe_request(ex.payload, dialect) if ex.protocol_id == PROTOCOL_ID
                and ex.message_id >= 0x10 else ex.payload.hex())
        number = numbers.get(id(ex))
        typer.echo(f"{'-' if number is None else number:>4} {ex.token:>5d} "
                   f"{ex.protocol_id:#04x}/{ex.message_id:#04x} {status:<24s} {what}")
