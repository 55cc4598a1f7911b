"""Build the memlat guest: a small arm64 Linux kernel with the SCMI virtio transport and
raw mode, a busybox initramfs, and QEMU virt's device tree with an `arm,scmi-virtio` node.

`build_guest()` (and `scripts/build-guest`, `memlat vm build`) produces, under
`$XDG_CACHE_HOME/memlat/guest/<key>/` (default `~/.cache/memlat/guest/<key>/`):

    Image            the kernel (unless --kernel IMAGE names one)
    initramfs.cpio.gz  /init (data/init), /bin/busybox (Debian's arm64 busybox-static),
                     /bin/scmi-raw (data/scmi-raw.c, cross-compiled static), /dev/console
    virt.dtb         QEMU's `-machine virt` DT + data/scmi-virtio.dtsi
    build.json       what was built, from what, how long each step took, sizes

`<key>` hashes everything the output depends on (the config fragment, the DT fragment,
the init script, the helper's source, the kernel source's identity, the QEMU version and
machine options), so a changed input builds a new guest and an unchanged one is reused.

Kernel: Debian's `linux-source-6.12` tarball (/usr/src) is extracted once into
`~/.cache/memlat/guest/src/`, configured with `allnoconfig` + data/guest.config
(merge_config.sh, then olddefconfig; every option of the fragment is checked to have
stuck) and built out of tree with `gcc-aarch64-linux-gnu`. `kernel_tree=DIR` builds a
user's tree instead (e.g. with the memlat devfreq patches), out of tree as well, so the
user's tree is never written to.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from memlat.errors import MemlatError
from memlat.vm import cpio

GUEST_FORMAT = 1
ARCH = "arm64"
CROSS_COMPILE = "aarch64-linux-gnu-"
QEMU = "qemu-system-aarch64"
#: the machine the DT is dumped from; memlat.vm.run boots with exactly these options
MACHINE_OPTS = ("-machine", "virt,memory-backend=mem", "-cpu", "cortex-a57", "-smp", "1",
                "-m", "512",
                "-object", "memory-backend-memfd,id=mem,size=512M,share=on")


class GuestBuildError(MemlatError):
    """A guest build step failed; the message names the step and what to install."""


@dataclass(frozen=True)
class Guest:
    """A built (or cached) guest."""

    directory: Path
    kernel: Path
    initramfs: Path
    dtb: Path
    info: dict[str, Any]


def data_text(name: str) -> str:
    """A file of memlat/vm/data as text."""
    return resources.files("memlat.vm").joinpath("data", name).read_text()


def cache_root() -> Path:
    """`$XDG_CACHE_HOME/memlat/guest` or `~/.cache/memlat/guest`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "memlat" / "guest"


def config_options(fragment: str) -> dict[str, str]:
    """`CONFIG_X=y` lines of a Kconfig fragment as {CONFIG_X: "y"}."""
    out = {}
    for line in fragment.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def find_kernel_source() -> Path:
    """The newest /usr/src/linux-source-*.tar.xz (Debian's linux-source package)."""
    found = sorted(Path("/usr/src").glob("linux-source-*.tar.xz"),
                   key=lambda p: [int(x) for x in re.findall(r"\d+", p.name)])
    if not found:
        raise GuestBuildError("no /usr/src/linux-source-*.tar.xz: install Debian's "
                              "linux-source-6.12 (bookworm-backports), or pass "
                              "--kernel-tree DIR or --kernel IMAGE (docs/vm.md)")
    return found[-1]


def _run(cmd: list[str], step: str, log: Callable[[str], None], **kw: Any) -> None:
    log("+ " + " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    except FileNotFoundError as exc:
        raise GuestBuildError(f"{step}: {cmd[0]} not found; docs/vm.md lists the Debian "
                              "packages to install") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise GuestBuildError(f"{step}: `{' '.join(cmd)}` exited {proc.returncode}:\n{tail}")


def qemu_version() -> str:
    """`qemu-system-aarch64 --version`'s first line."""
    try:
        out = subprocess.run([QEMU, "--version"], capture_output=True, text=True,
                             check=True).stdout
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        raise GuestBuildError(f"{QEMU} not found: install qemu-system-arm from "
                              "bookworm-backports (QEMU >= 8.2 has vhost-user-scmi)") from exc
    return out.splitlines()[0].strip()


def guest_key(source_id: str, qemu: str, extra_config: str = "") -> str:
    """16 hex digits of sha256 over every input of the guest."""
    h = hashlib.sha256()
    parts = [str(GUEST_FORMAT), source_id, qemu, " ".join(MACHINE_OPTS),
             data_text("guest.config"), data_text("scmi-virtio.dtsi"), data_text("init"),
             data_text("scmi-raw.c")]
    if extra_config:
        parts.append(extra_config)
    for part in parts:
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def build_guest(*, kernel_tree: str | os.PathLike[str] | None = None,
                kernel_image: str | os.PathLike[str] | None = None, jobs: int | None = None,
                extra_config: str | os.PathLike[str] | None = None, force: bool = False,
                log: Callable[[str], None] = print) -> Guest:
    """Build (or reuse) the guest; returns its files. Raises GuestBuildError naming the
    failed step.

    extra_config: a Kconfig fragment merged after data/guest.config (e.g. the options a
    patch series adds); its options are checked to stick like the base fragment's.
    """
    qemu = qemu_version()
    extra = ""
    if extra_config is not None:
        try:
            extra = Path(extra_config).read_text()
        except OSError as exc:
            raise GuestBuildError(f"--config {extra_config}: {exc.strerror}") from exc
        bad = [line for line in extra.splitlines()
               if line.strip() and not line.startswith("#")
               and not re.fullmatch(r"CONFIG_\w+=\S+", line.strip())]
        if bad:
            raise GuestBuildError(f"--config {extra_config}: not a Kconfig fragment line: "
                                  f"{bad[0]!r} (expected CONFIG_NAME=value)")
    if kernel_image is not None:
        image = Path(kernel_image).resolve()
        if not image.is_file():
            raise GuestBuildError(f"--kernel {image}: no such file")
        source_id = f"image:{image}"
    elif kernel_tree is not None:
        tree = Path(kernel_tree).resolve()
        if not (tree / "Makefile").is_file() or not (tree / "arch" / ARCH).is_dir():
            raise GuestBuildError(f"--kernel-tree {tree}: not a Linux source tree "
                                  "(no Makefile or arch/arm64)")
        source_id = f"tree:{tree}"
    else:
        tarball = find_kernel_source()
        source_id = f"tarball:{tarball.name}:{tarball.stat().st_size}"
    key = guest_key(source_id, qemu, extra)
    out = cache_root() / key
    out.mkdir(parents=True, exist_ok=True)
    # one build per guest at a time (two test workers, two terminals): the second waits
    # for the first and then finds the guest cached
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(out, key, source_id, qemu, extra, kernel_tree, kernel_image,
                             jobs, force, log)


def _build_locked(out: Path, key: str, source_id: str, qemu: str, extra: str,
                  kernel_tree: str | os.PathLike[str] | None,
                  kernel_image: str | os.PathLike[str] | None, jobs: int | None,
                  force: bool, log: Callable[[str], None]) -> Guest:
    info_path = out / "build.json"
    if info_path.is_file() and not force and kernel_tree is None:
        log(f"guest {key}: cached in {out}")
        return _guest(out, json.loads(info_path.read_text()))
    info: dict[str, Any] = {"key": key, "source": source_id, "qemu": qemu, "steps": {}}
    steps: dict[str, float] = info["steps"]
    t_all = time.monotonic()

    if kernel_image is not None:
        info["kernel"] = str(kernel_image)
    else:
        if kernel_tree is None:
            t = time.monotonic()
            src = _extract(find_kernel_source(), log)
            steps["extract_s"] = round(time.monotonic() - t, 1)
        else:
            src = Path(kernel_tree).resolve()
        t = time.monotonic()
        _build_kernel(src, out / "obj", jobs or os.cpu_count() or 1, extra, log)
        steps["kernel_s"] = round(time.monotonic() - t, 1)
        shutil.copyfile(out / "obj" / "arch" / ARCH / "boot" / "Image", out / "Image")
        info["kernel"] = str(out / "Image")
        info["kernel_release"] = (out / "obj" / "include" / "config" /
                                  "kernel.release").read_text().strip()

    t = time.monotonic()
    busybox = fetch_busybox(log)
    steps["busybox_s"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    helper = out / "scmi-raw"
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "scmi-raw.c"
        source.write_text(data_text("scmi-raw.c"))
        _run([CROSS_COMPILE + "gcc", "-static", "-O2", "-Wall", "-o", str(helper),
              str(source)], "cross-compiling scmi-raw (gcc-aarch64-linux-gnu, "
                            "libc6-dev-arm64-cross)", log)
    _run([CROSS_COMPILE + "strip", str(helper)], "stripping scmi-raw", log)
    (out / "initramfs.cpio.gz").write_bytes(cpio.gz(cpio.newc(base_entries(
        busybox.read_bytes(), helper.read_bytes()))))
    steps["initramfs_s"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    build_dtb(out / "virt.dtb", log)
    steps["dtb_s"] = round(time.monotonic() - t, 1)
    steps["total_s"] = round(time.monotonic() - t_all, 1)
    info["sizes"] = {name: (out / name).stat().st_size
                     for name in ("Image", "initramfs.cpio.gz", "virt.dtb")
                     if (out / name).exists()}
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    return _guest(out, info)


def _guest(out: Path, info: dict[str, Any]) -> Guest:
    return Guest(out, Path(info["kernel"]), out / "initramfs.cpio.gz", out / "virt.dtb", info)


def _extract(tarball: Path, log: Callable[[str], None]) -> Path:
    """Extract the Debian kernel source once (a marker file says it completed)."""
    dest = cache_root() / "src"
    name = tarball.name.removesuffix(".tar.xz")
    tree = dest / name
    marker = dest / f"{name}.extracted"
    if marker.is_file() and tree.is_dir():
        return tree
    if tree.exists():
        shutil.rmtree(tree)  # a half-extracted tree memlat created itself
    dest.mkdir(parents=True, exist_ok=True)
    log(f"extracting {tarball} into {dest} (about a minute)")
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="tar")
    if not tree.is_dir():
        raise GuestBuildError(f"{tarball} did not contain {name}/")
    marker.write_text(str(tarball) + "\n")
    return tree


def _build_kernel(src: Path, obj: Path, jobs: int, extra: str,
                  log: Callable[[str], None]) -> None:
    """allnoconfig + fragment(s), checked, then `make Image`, out of tree in `obj`."""
    obj.mkdir(parents=True, exist_ok=True)
    make = ["make", "-C", str(src), f"O={obj}", f"ARCH={ARCH}",
            f"CROSS_COMPILE={CROSS_COMPILE}"]
    fragment = obj / "memlat-guest.config"
    wanted = data_text("guest.config") + ("\n" + extra if extra else "")
    fragment.write_text(wanted)
    _run([*make, "allnoconfig"], "kernel allnoconfig (make, flex, bison)", log)
    _run([str(src / "scripts" / "kconfig" / "merge_config.sh"), "-m", "-O", str(obj),
          str(obj / ".config"), str(fragment)], "merging the config fragment", log,
         cwd=src, env={**os.environ, "ARCH": ARCH, "CROSS_COMPILE": CROSS_COMPILE})
    _run([*make, "olddefconfig"], "kernel olddefconfig", log)
    have = config_options((obj / ".config").read_text())
    lost = [k for k, v in config_options(wanted).items() if have.get(k) != v]
    if lost:
        raise GuestBuildError("the kernel config dropped " + ", ".join(lost)
                              + " (a dependency is missing in this kernel version)")
    _run([*make, f"-j{jobs}", "Image"], "kernel build (gcc-aarch64-linux-gnu, bc, "
                                        "libssl-dev, libelf-dev)", log)


def fetch_busybox(log: Callable[[str], None]) -> Path:
    """Debian's arm64 busybox-static, fetched with apt into a private state folder (the
    host gets no foreign architecture), cached under `cache_root()/busybox`."""
    home = cache_root() / "busybox"
    binary = home / "busybox"
    if binary.is_file():
        return binary
    state = home / "apt"
    for sub in ("lists/partial", "cache/archives/partial"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    (state / "status").touch()
    opts = ["-o", "APT::Architecture=arm64", "-o", "APT::Architectures::=arm64",
            "-o", f"Dir::State={state}", "-o", f"Dir::State::Lists={state}/lists",
            "-o", f"Dir::State::status={state}/status", "-o", f"Dir::Cache={state}/cache",
            "-o", "Debug::NoLocking=1", "-q"]
    _run(["apt-get", *opts, "update"], "apt-get update (arm64 lists, private state)", log)
    with tempfile.TemporaryDirectory() as tmp:
        _run(["apt-get", *opts, "download", "busybox-static:arm64"],
             "apt-get download busybox-static:arm64", log, cwd=tmp)
        debs = list(Path(tmp).glob("busybox-static_*_arm64.deb"))
        if not debs:
            raise GuestBuildError("apt-get download busybox-static:arm64 gave no .deb")
        _run(["dpkg-deb", "-x", str(debs[0]), str(Path(tmp) / "x")], "dpkg-deb -x", log)
        shutil.copyfile(Path(tmp) / "x" / "bin" / "busybox", binary)
        (home / "version").write_text(debs[0].name + "\n")
    binary.chmod(0o755)
    return binary


def base_entries(busybox: bytes, helper: bytes) -> list[cpio.Entry]:
    """The initramfs: /init, busybox, scmi-raw, the mount points and /dev/console (the
    kernel opens it for init's stdio before devtmpfs is mounted)."""
    return [cpio.directory("bin"), cpio.directory("dev"), cpio.directory("proc"),
            cpio.directory("sys"), cpio.chardev("dev/console", 5, 1),
            cpio.file("init", data_text("init").encode(), 0o755),
            cpio.file("bin/busybox", busybox, 0o755), cpio.file("bin/scmi-raw", helper, 0o755)]


def build_dtb(dest: Path, log: Callable[[str], None]) -> None:
    """Dump QEMU virt's DT with MACHINE_OPTS, append the SCMI node, compile with dtc."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "virt.dtb"
        opts = list(MACHINE_OPTS)
        opts[1] = opts[1] + f",dumpdtb={base}"
        _run([QEMU, *opts, "-nic", "none", "-display", "none"], "qemu dumpdtb", log)
        dts = Path(tmp) / "virt.dts"
        _run(["dtc", "-q", "-I", "dtb", "-O", "dts", "-o", str(dts), str(base)],
             "dtc decompile (device-tree-compiler)", log)
        dts.write_text(dts.read_text() + "\n" + data_text("scmi-virtio.dtsi"))
        _run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(dest), str(dts)],
             "dtc compile", log)
