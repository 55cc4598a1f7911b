"""`memlat platform serve`: the emulated platform for external agents (decisions.md §5)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
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
        mailbox_read: str = typer.Option(
            "hexdump", "--mailbox-read",
            help="What a read of the --mailbox-fuse `message` file returns: 'hexdump' "
                 "(stock mailbox-test.c) or 'raw' (the 128-byte receive buffer, as the "
                 "patched driver ARM's scmi-tests Linux agent reads)."),
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
        from memlat.cli._checks import input_file
        from memlat.errors import ConfigError, MemlatError
        from memlat.frontends.serve import serve

        logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                            format="%(message)s", stream=sys.stderr)
        if not any((unix, shm, raw_fuse, mailbox_fuse, vhost_user)):
            raise typer.BadParameter("give at least one of --unix, --shm, --raw-fuse, "
                                     "--mailbox-fuse, --vhost-user")
        if doorbell not in ("eventfd", "pipe", "poll"):
            raise typer.BadParameter(f"{doorbell!r}: choose from eventfd, pipe, poll",
                                     param_hint="--doorbell")
        input_file(trace, "--trace")
        _check_endpoint(unix, "--unix")
        # the shm channel is a memfd; only its control socket PATH.ctl is a file
        _check_endpoint(f"{shm}.ctl" if shm else None, "--shm")
        _check_mountpoint(raw_fuse, "--raw-fuse")
        _check_mountpoint(mailbox_fuse, "--mailbox-fuse")
        _check_endpoint(vhost_user, "--vhost-user")
        try:
            if factory:
                platform = _load_factory(factory)(soc)
            else:
                platform, service = _wall_clock_platform(soc, trace)
            typer.echo(f"memlat platform ({soc}): protocols "
                       + ", ".join(f"{p:#04x}" for p in platform.protocol_ids()), err=True)
            serve(platform, unix=unix, shm=shm, raw_fuse=raw_fuse, mailbox_fuse=mailbox_fuse,
                  doorbell=doorbell, mailbox_read=mailbox_read, log_messages=not quiet,
                  vhost_user=vhost_user, vhost_user_capture=vhost_user_capture,
                  on_ready=lambda fronts: typer.echo(
                      "ready: " + " ".join(f.name for f in fronts), err=True))
        except (ConfigError, ValueError) as exc:
            typer.echo(f"memlat platform serve: {exc}", err=True)
            raise typer.Exit(2) from exc
        except MemlatError as exc:
            typer.echo(f"memlat platform serve: {exc}", err=True)
            raise typer.Exit(1) from exc
        finally:
            if "service" in locals():
                service.sampler.stop_thread()

    app.add_typer(group, name="platform")


def _check_endpoint(value: str | None, hint: str) -> None:
    """The socket `value` can be created: its folder exists and is writable, and what is
    already there is a socket (a live server is refused when serving starts, a stale one
    replaced), never a file the user made (memlat.frontends.paths)."""
    from memlat.frontends.paths import not_a_socket, socket_state

    if not value:
        return
    path = Path(value)
    if not path.parent.is_dir():
        raise typer.BadParameter(f"{path}: folder {path.parent} does not exist",
                                 param_hint=hint)
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise typer.BadParameter(f"{path}: folder {path.parent} is not writable",
                                 param_hint=hint)
    if socket_state(str(path)) == "other":
        raise typer.BadParameter(not_a_socket(str(path)), param_hint=hint)


def _check_mountpoint(value: str | None, hint: str) -> None:
    """A FUSE mount point is an existing folder or can be created in an existing one."""
    from memlat.frontends.fusemount import is_dead_mount

    if not value:
        return
    path = Path(value)
    if is_dead_mount(path):
        return  # left by a killed server: serve recovers it (frontends.fusemount)
    if path.exists() and not path.is_dir():
        raise typer.BadParameter(f"{path} exists and is not a folder", param_hint=hint)
    if not path.exists() and not path.parent.is_dir():
        raise typer.BadParameter(f"{path}: folder {path.parent} does not exist",
                                 param_hint=hint)


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
    cfg = load_config(soc=soc)
    platform, service = make_cpucp_platform(cfg.hardware(enforce_limits=True),
                                            clock=WallClock(), source=source)
    service.sampler.start_thread()
    return platform, service
