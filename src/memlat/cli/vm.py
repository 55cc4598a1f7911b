"""`memlat vm`: build the real-kernel guest and boot it against the emulated CPUCP
(docs/vm.md)."""

from __future__ import annotations

import json

import typer


def register(app: typer.Typer) -> None:
    """Add the `vm` command group to `app`."""
    group = typer.Typer(help="Boot a real Linux kernel (QEMU) against the emulated CPUCP "
                             "over vhost-user SCMI.", no_args_is_help=True)

    @group.command("build")
    def build_cmd(
        kernel_tree: str = typer.Option(None, "--kernel-tree",
                                        help="Build this Linux tree (out of tree) instead "
                                             "of Debian's linux-source."),
        kernel: str = typer.Option(None, "--kernel", help="Use this arm64 Image; build "
                                                          "only the initramfs and DT."),
        jobs: int = typer.Option(None, "--jobs", "-j", help="make -j (default: all CPUs)."),
        config: str = typer.Option(None, "--config", help="Extra Kconfig fragment merged "
                                                          "after the guest's (e.g. a patch "
                                                          "series' options)."),
        force: bool = typer.Option(False, "--force", help="Rebuild even if cached."),
    ) -> None:
        """Build (or find cached) the guest; prints its folder, step times and sizes."""
        from memlat.vm.guest import GuestBuildError, build_guest

        try:
            guest = build_guest(kernel_tree=kernel_tree, kernel_image=kernel, jobs=jobs,
                                extra_config=config, force=force,
                                log=lambda s: typer.echo(s, err=True))
        except GuestBuildError as exc:
            typer.echo(f"memlat vm build: {exc}", err=True)
            raise typer.Exit(1) from exc
        typer.echo(f"guest: {guest.directory}")
        typer.echo(f"kernel: {guest.kernel}")
        for name, value in guest.info.get("steps", {}).items():
            typer.echo(f"  {name}: {value}")
        for name, size in guest.info.get("sizes", {}).items():
            typer.echo(f"  {name}: {size / 1024:.0f} KiB")

    @group.command("run")
    def run_cmd(
        soc: str = typer.Option("x1e80100", "--soc", help="SoC profile of the emulated CPUCP."),
        kernel: str = typer.Option(None, "--kernel", help="Boot this arm64 Image (e.g. "
                                                          "with the memlat patches)."),
        dtb: str = typer.Option(None, "--dtb", help="Boot with this device tree instead of "
                                                    "the guest's (it needs the "
                                                    "arm,scmi-virtio node)."),
        timeout: float = typer.Option(300.0, "--timeout", help="Seconds for the whole boot."),
        rounds: int = typer.Option(200, "--rounds", help="Round trips timed in the guest."),
        workdir: str = typer.Option(None, "--workdir", help="Keep console.log, "
                                                            "platform.log and the initrd here."),
        capture: str = typer.Option(None, "--capture", help="Record the vhost-user messages "
                                                            "and cmdq chains (JSON lines)."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
    ) -> None:
        """Boot the guest, report the kernel's SCMI discovery, run the probe through raw
        mode and compare each reply with the in-process probe; exit 1 on any difference."""
        from memlat.errors import MemlatError
        from memlat.vm.run import run_vm

        try:
            result = run_vm(soc=soc, kernel=kernel, dtb=dtb, timeout_s=timeout, rounds=rounds,
                            workdir=workdir, capture=capture,
                            log=lambda s: typer.echo(s, err=True))
        except MemlatError as exc:
            typer.echo(f"memlat vm run: {exc}", err=True)
            raise typer.Exit(1) from exc
        if as_json:
            typer.echo(json.dumps({
                "discovery": result.discovery(), "dmesg": result.dmesg,
                "transport": result.transport, "sysfs": result.sysfs,
                "boot_s": result.boot_s, "guest_up_s": result.guest_up_s,
                "rtt_us": result.rtt_us, "errors": result.errors,
                "compared": [{"index": c.index, "command": c.command.hex(),
                              "expected": c.expected.hex(),
                              "got": c.got.hex() if c.got is not None else None,
                              "same": c.same} for c in result.compared]}, indent=2))
        else:
            for line in result.report():
                typer.echo(line)
        if not result.all_same or result.errors:
            raise typer.Exit(1)

    app.add_typer(group, name="vm")
