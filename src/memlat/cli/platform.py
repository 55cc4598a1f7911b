"""`memlat platform serve`: the emulated platform for external agents (decisions.md §5)."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from collections.abc import Callable

    from memlat.cpucp.sampling import CounterSource
    from memlat.cpucp.service import CpucpService
    from memlat.scmi.platform import Platform


def register(app: typer.Typer) -> None:
    """Add the `platform` command group to `app`."""
    group = typer.Typer(help="Run the emulated CPUCP platform for external agents.",
                        no_args_is_help=True)

    @group.command("serve")
    def serve_cmd(
        soc: str = typer.Option("x1e80100", "--soc", help="SoC profile of the emulated CPUCP."),
        unix: str = typer.Option(None, "--unix", help="Serve framed SCMI on this Unix socket."),
        shm: str = typer.Option(None, "--shm", help="Serve an SMT shared-memory channel "
                                "(a sealed memfd) through the control socket PATH.ctl."),
        raw_fuse: str = typer.Option(None, "--raw-fuse",
                                     help="Mount a Linux SCMI raw-mode tree (FUSE) here."),
        mailbox_fuse: str = typer.Option(None, "--mailbox-fuse",
                                         help="Mount the mailbox-test message/signal pair."),
        vhost_user: str = typer.Option(None, "--vhost-user",
                                       help="Serve QEMU's vhost-user-scmi device on this "
                                            "Unix socket (docs/vm.md)."),
        vhost_user_capture: str = typer.Option(None, "--vhost-user-capture", hidden=True,
                                               help="Record every vhost-user message and "
                                                    "cmdq chain as JSON lines here."),
        doorbell: str = typer.Option("eventfd", "--doorbell",
                                     help="shm doorbell: eventfd, pipe or poll."),
        quiet: bool = typer.Option(False, "--quiet", help="Do not log every message."),
        factory: str = typer.Option(None, "--factory", hidden=True,
                                    help="MODULE:FUNC returning the Platform to serve "
                                         "(called with the SoC name); for tests and "
                                         "custom protocols."),
        trace: str = typer.Option(None, "--trace",
                                  help="Counter trace (CSV/Parquet) the governor samples; "
                                       "default: a synthetic CPU-frequency staircase."),
    ) -> None:
        """Serve until SIGINT/SIGTERM, logging each message like scmi_msg_dump."""
        from memlat.errors import MemlatError
        from memlat.frontends.serve import serve

        logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                            format="%(message)s", stream=sys.stderr)
        if not any((unix, shm, raw_fuse, mailbox_fuse, vhost_user)):
            raise typer.BadParameter("give at least one of --unix, --shm, --raw-fuse, "
                                     "--mailbox-fuse, --vhost-user")
        try:
            if factory:
                platform = _load_factory(factory)(soc)
            else:
                platform, service = _wall_clock_platform(soc, trace)
            typer.echo(f"memlat platform ({soc}): protocols "
                       + ", ".join(f"{p:#04x}" for p in platform.protocol_ids()), err=True)
            serve(platform, unix=unix, shm=shm, raw_fuse=raw_fuse, mailbox_fuse=mailbox_fuse,
                  doorbell=doorbell, log_messages=not quiet, vhost_user=vhost_user,
                  vhost_user_capture=vhost_user_capture,
                  on_ready=lambda fronts: typer.echo(
                      "ready: " + " ".join(f.name for f in fronts), err=True))
        except (MemlatError, OSError, ValueError) as exc:
            typer.echo(f"memlat platform serve: {exc}", err=True)
            raise typer.Exit(1) from exc
        finally:
            if "service" in locals():
                service.sampler.stop_thread()

    app.add_typer(group, name="platform")


def _load_factory(spec: str) -> Callable[[str], Platform]:
    import importlib

    module_name, _, func = spec.partition(":")
    factory: Callable[[str], Platform] = getattr(importlib.import_module(module_name),
                                                 func or "make_platform")
    return factory


def _wall_clock_platform(soc: str, trace: str | None) -> tuple[Platform, CpucpService]:
    """The emulated CPUCP for real agents: platform time is the wall clock, and the
    governor samples `trace` (or a synthetic staircase) in a background thread once an
    agent sends START_TIMER (cpucp.md, wall-clock mode)."""
    from memlat.clock import WallClock
    from memlat.config import load_config
    from memlat.cpucp.boot import make_cpucp_platform
    from memlat.cpucp.sources import StaircaseSource, TraceSource

    source: CounterSource = StaircaseSource()
    if trace:
        from memlat.traces import read_trace

        source = TraceSource(read_trace(trace))
    platform, service = make_cpucp_platform(load_config(soc=soc).hardware(),
                                            clock=WallClock(), source=source)
    service.sampler.start_thread()
    return platform, service
