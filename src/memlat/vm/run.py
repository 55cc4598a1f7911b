"""`memlat vm run`: boot the guest kernel against the emulated CPUCP over vhost-user.

Order: build (or reuse) the guest; run the probe in process against a fresh emulated
CPUCP and keep every command and reply; put those commands in the guest's initramfs
(/probe/NNNN.bin, appended as a second cpio archive); start `memlat platform serve
--vhost-user SOCK` and wait for it; start QEMU (TCG, `-machine virt` with a memfd memory
backend, `-nic none`, `vhost-user-scmi-pci`); read the guest's console. The guest's
/init (data/init) prints the kernel's SCMI lines and, through raw mode, sends every
probe command and prints every reply (data/scmi-raw.c); then it powers off.

`run_vm()` returns a `VmResult`: what the kernel's SCMI core reported (dmesg, sysfs,
debugfs transport), each guest reply against the in-process one, boot time and the
round-trip time per SCMI message through the real kernel.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memlat.agent.probe import probe
from memlat.agent.session import open_session
from memlat.errors import MemlatError
from memlat.qcom.ids import PROTOCOL_ID as QCOM_PROTOCOL
from memlat.scmi.message import Message
from memlat.vm import cpio
from memlat.vm.guest import MACHINE_OPTS, QEMU, Guest, build_guest

BASE_PROTOCOL = 0x10
DISCOVER_LIST_PROTOCOLS = 0x6
#: the kernel's dynamic debug for the SCMI core: "Found N protocol(s) M agent(s)"
KERNEL_CMDLINE = ('console=ttyAMA0 rdinit=/init panic=-1 quiet '
                  'dyndbg="file drivers/firmware/arm_scmi/* +p"')
#: the message timed in the round-trip loop: BASE PROTOCOL_VERSION, token 0x3ff
RTT_MESSAGE = struct.pack("<I", (0x3FF << 18) | (BASE_PROTOCOL << 10) | 0x0)

_VERSION_LINE = re.compile(r"SCMI Protocol v(\d+)\.(\d+) '([^:']*):([^']*)' "
                           r"Firmware version (0x[0-9a-fA-F]+)")
_FOUND_LINE = re.compile(r"Found (\d+) protocol\(s\) (\d+) agent\(s\)")
_NOT_IMPL = re.compile(r"SCMI protocol (\d+) not implemented")
_DT_PROTOCOLS = (QCOM_PROTOCOL,)  # the protocol@ nodes of data/scmi-virtio.dtsi


class VmError(MemlatError):
    """The VM could not be run (QEMU missing, platform server failed, guest timeout)."""


@dataclass(frozen=True)
class Compared:
    """One probe message: the in-process reply and the reply through the guest kernel."""

    index: int
    command: bytes
    expected: bytes
    got: bytes | None
    ns: int | None

    @property
    def protocol_id(self) -> int:
        """The command's protocol."""
        return Message.from_bytes(self.command).header.protocol_id

    @property
    def same(self) -> bool:
        """Byte-identical replies."""
        return self.got == self.expected


@dataclass
class VmResult:
    """What one boot showed."""

    console: list[str] = field(default_factory=list)
    dmesg: list[str] = field(default_factory=list)
    transport: dict[str, str] = field(default_factory=dict)
    sysfs: dict[str, str] = field(default_factory=dict)
    compared: list[Compared] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    boot_s: float | None = None
    guest_up_s: float | None = None
    wall_s: float = 0.0
    rtt: tuple[int, int] | None = None  # (rounds, total ns)
    qemu_rc: int | None = None
    guest: Guest | None = None

    # -- what the kernel's SCMI core discovered --------------------------------------
    def discovery(self) -> dict[str, Any]:
        """The kernel's base-protocol discovery as its dmesg lines state it: protocol
        version, vendor, sub-vendor, firmware version, the protocol count (dynamic debug
        of base.c), and which DT protocol nodes it found implemented."""
        out: dict[str, Any] = {}
        not_implemented: set[int] = set()
        for line in self.dmesg:
            if m := _VERSION_LINE.search(line):
                out["protocol_version"] = f"{m[1]}.{m[2]}"
                out["vendor"], out["sub_vendor"] = m[3], m[4]
                out["firmware_version"] = m[5]
            if m := _FOUND_LINE.search(line):
                out["protocols_found"], out["agents"] = int(m[1]), int(m[2])
            if m := _NOT_IMPL.search(line):
                not_implemented.add(int(m[1]))
        if "vendor" in out:
            out["dt_protocols_implemented"] = [p for p in _DT_PROTOCOLS
                                               if p not in not_implemented]
            out["dt_protocols_not_implemented"] = sorted(not_implemented)
        listed = self.raw_protocol_list()
        if listed is not None:
            out["raw_list_protocols"] = listed
        return out

    def raw_protocol_list(self) -> list[int] | None:
        """Protocol ids in the BASE DISCOVER_LIST_PROTOCOLS reply that went through the
        guest kernel's raw mode (SCMI 3.2 §4.2.2.6: u32 count, then ids packed in u32s)."""
        for c in self.compared:
            cmd = Message.from_bytes(c.command).header
            if (cmd.protocol_id, cmd.message_id) != (BASE_PROTOCOL, DISCOVER_LIST_PROTOCOLS):
                continue
            if c.got is None or len(c.got) < 12:
                return None
            (count,) = struct.unpack_from("<I", c.got, 8)
            return list(c.got[12:12 + count])
        return None

    @property
    def qcom_compared(self) -> list[Compared]:
        """The compared messages of protocol 0x80 (the probe sequence proper)."""
        return [c for c in self.compared if c.protocol_id == QCOM_PROTOCOL]

    @property
    def all_same(self) -> bool:
        """Every guest reply is byte-identical to the in-process one."""
        return bool(self.compared) and all(c.same for c in self.compared)

    @property
    def rtt_us(self) -> float | None:
        """Mean round trip of one SCMI message through the guest kernel's raw mode."""
        if self.rtt is None or self.rtt[0] == 0:
            return None
        return self.rtt[1] / self.rtt[0] / 1000

    def report(self) -> list[str]:
        """Lines for humans."""
        d = self.discovery()
        lines = []
        if self.guest is not None:
            lines.append(f"guest: {self.guest.kernel} ({self.guest.directory})")
        lines.append(f"boot: {_fmt(self.boot_s, 's')} to init (guest uptime "
                     f"{_fmt(self.guest_up_s, 's')}), wall {self.wall_s:.1f} s, "
                     f"qemu exit {self.qemu_rc}")
        lines.append("kernel SCMI dmesg:")
        lines += [f"  {line}" for line in self.dmesg if "scmi" in line.lower()]
        if d:
            lines.append(
                f"discovered: SCMI v{d.get('protocol_version')} vendor "
                f"{d.get('vendor')!r} sub-vendor {d.get('sub_vendor')!r} firmware "
                f"{d.get('firmware_version')}; {d.get('protocols_found', '?')} protocol(s); "
                "DT protocols implemented: "
                + ", ".join(f"{p:#04x}" for p in d.get("dt_protocols_implemented", []))
                + ("; raw DISCOVER_LIST_PROTOCOLS: "
                   + ", ".join(f"{p:#04x}" for p in d["raw_list_protocols"])
                   if "raw_list_protocols" in d else ""))
        else:
            lines.append("discovered: nothing (no SCMI version line in dmesg)")
        if self.transport:
            lines.append("transport: " + ", ".join(f"{k}={v}" for k, v in
                                                    self.transport.items()))
        same = sum(c.same for c in self.compared)
        q = self.qcom_compared
        lines.append(f"raw-mode probe: {same}/{len(self.compared)} replies identical to the "
                     f"in-process probe ({sum(c.same for c in q)}/{len(q)} QCOM 0x80 "
                     "commands)")
        for c in self.compared:
            if not c.same:
                lines.append(f"  message {c.index}: expected {c.expected.hex()} got "
                             f"{c.got.hex() if c.got is not None else 'nothing'}")
        if self.rtt_us is not None and self.rtt is not None:
            lines.append(f"round trip through the guest kernel: {self.rtt_us:.0f} us per "
                         f"message (mean of {self.rtt[0]})")
        lines += [f"error: {e}" for e in self.errors]
        return lines


def _fmt(value: float | None, unit: str) -> str:
    return "?" if value is None else f"{value:.2f} {unit}"


def reference_probe(soc: str) -> list[tuple[bytes, bytes]]:
    """(command, reply) bytes of the whole probe (discovery, PROTOCOL_VERSION of 0x80,
    the QCOM sequence) against a fresh in-process emulated CPUCP."""
    session = open_session(soc=soc)
    pairs: list[tuple[bytes, bytes]] = []

    def observe(_agent: int, command: Message, reply: Message | None) -> None:
        if reply is not None:
            pairs.append((command.to_bytes(), reply.to_bytes()))

    assert session.platform is not None
    session.platform.observers.append(observe)
    try:
        probe(session.agent, session.soc, session.dialect)
    finally:
        session.close()
    return pairs


def probe_archive(commands: list[bytes], rounds: int) -> bytes:
    """The cpio appended to the guest's initramfs: /probe/0001.bin ... and the RTT loop."""
    entries = [cpio.directory("probe")]
    entries += [cpio.file(f"probe/{i:04d}.bin", cmd) for i, cmd in enumerate(commands, 1)]
    entries += [cpio.file("probe/rtt.bin", RTT_MESSAGE), cpio.file("probe/rounds",
                                                                    f"{rounds}\n".encode())]
    return cpio.gz(cpio.newc(entries))


def qemu_command(guest: Guest, initrd: Path, sock: Path, dtb: Path | None = None) -> list[str]:
    """QEMU's command line: -nic none (else QEMU looks for an absent efi-virtio.rom),
    shared memfd guest memory (vhost-user maps it), the back-end's socket."""
    return [QEMU, *MACHINE_OPTS, "-nic", "none", "-display", "none", "-monitor", "none",
            "-serial", "stdio", "-no-reboot",
            "-kernel", str(guest.kernel), "-initrd", str(initrd),
            "-dtb", str(dtb or guest.dtb), "-append", KERNEL_CMDLINE,
            "-chardev", f"socket,id=vscmi,path={sock}",
            "-device", "vhost-user-scmi-pci,chardev=vscmi,id=scmi"]


def run_vm(*, soc: str = "x1e80100", kernel: str | os.PathLike[str] | None = None,
           dtb: str | os.PathLike[str] | None = None, guest: Guest | None = None,
           timeout_s: float = 180.0, rounds: int = 200,
           workdir: str | os.PathLike[str] | None = None, capture: str | None = None,
           log: Callable[[str], None] = print) -> VmResult:
    """Boot, probe through raw mode, compare; see the module docstring."""
    guest = guest or build_guest(kernel_image=kernel, log=log)
    result = VmResult(guest=guest)
    pairs = reference_probe(soc)
    with tempfile.TemporaryDirectory(prefix="memlat-vm-") as tmp:
        work = Path(workdir) if workdir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        initrd = work / "initramfs.cpio.gz"
        initrd.write_bytes(guest.initramfs.read_bytes()
                           + probe_archive([c for c, _ in pairs], rounds))
        sock = work / "vhost-user-scmi.sock"
        server = _start_server(soc, sock, work / "platform.log", capture)
        try:
            _boot(result, qemu_command(guest, initrd, sock, Path(dtb) if dtb else None),
                  timeout_s, work, log)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    compare_replies(result, pairs)
    return result


def compare_replies(result: VmResult, pairs: list[tuple[bytes, bytes]]) -> None:
    """Match the guest's `MEMLAT-REPLY NNNN.bin <ns> <hex>` console lines with the
    in-process (command, reply) pairs, in order; a missing reply is recorded as None."""
    replies = {}
    for line in result.console:
        if line.startswith("MEMLAT-REPLY "):
            parts = line.split()
            if len(parts) == 4 and parts[1].endswith(".bin") and parts[1][:-4].isdigit():
                replies[int(parts[1][:-4])] = (bytes.fromhex(parts[3]), int(parts[2]))
    result.compared = []
    for i, (cmd, expected) in enumerate(pairs, 1):
        got, ns = replies.get(i, (None, None))
        result.compared.append(Compared(i, cmd, expected, got, ns))


def _start_server(soc: str, sock: Path, logfile: Path,
                  capture: str | None) -> subprocess.Popen[bytes]:
    """`memlat platform serve --vhost-user SOCK`; returns once it says ready."""
    cmd = [sys.executable, "-m", "memlat", "platform", "serve", "--soc", soc,
           "--vhost-user", str(sock)]
    if capture:
        cmd += ["--vhost-user-capture", capture]
    with open(logfile, "wb") as err:
        server = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=err)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if b"ready:" in logfile.read_bytes():
            return server
        if server.poll() is not None:
            raise VmError(f"memlat platform serve exited {server.returncode}: "
                          + logfile.read_text(errors="replace")[-2000:])
        time.sleep(0.05)
    server.kill()
    raise VmError("memlat platform serve did not get ready in 30 s")


def _boot(result: VmResult, cmd: list[str], timeout_s: float, work: Path,
          log: Callable[[str], None]) -> None:
    log("+ " + " ".join(f"'{a}'" if " " in a else a for a in cmd))
    t0 = time.monotonic()
    try:
        qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
    except FileNotFoundError as exc:
        raise VmError(f"{cmd[0]} not found: install qemu-system-arm from "
                      "bookworm-backports (docs/vm.md)") from exc
    assert qemu.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(qemu.stdout, selectors.EVENT_READ)
    buf = b""
    done = False
    try:
        while not done:
            left = t0 + timeout_s - time.monotonic()
            if left <= 0:
                result.errors.append(f"guest did not finish in {timeout_s:.0f} s")
                break
            if not sel.select(min(left, 1.0)):
                continue
            chunk = os.read(qemu.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode(errors="replace").rstrip("\r")
                result.console.append(line)
                done = parse_line(result, line, time.monotonic() - t0)
    finally:
        sel.close()
        if qemu.poll() is None:
            try:
                qemu.wait(15)
            except subprocess.TimeoutExpired:
                qemu.kill()
                qemu.wait()
        result.qemu_rc = qemu.returncode
        result.wall_s = time.monotonic() - t0
        (work / "console.log").write_text("\n".join(result.console) + "\n")


def parse_line(result: VmResult, line: str, elapsed: float) -> bool:
    """Record one guest console line (elapsed: seconds since QEMU started); True once
    the guest said MEMLAT-DONE."""
    tag, _, rest = line.partition(" ")
    if tag == "MEMLAT-UP":
        result.boot_s = elapsed
        result.guest_up_s = float(rest)
    elif tag == "MEMLAT-DMESG":
        result.dmesg.append(rest)
    elif tag == "MEMLAT-TRANSPORT":
        key, _, value = rest.partition(" ")
        result.transport[key] = value
    elif tag == "MEMLAT-SYSFS":
        key, _, value = rest.partition(" ")
        result.sysfs[key] = value
    elif tag == "MEMLAT-RTT":
        rounds, total = rest.split()
        result.rtt = (int(rounds), int(total))
    elif tag == "MEMLAT-ERROR":
        result.errors.append("guest: " + rest)
    elif "Kernel panic" in line:
        result.errors.append(line)
    return tag == "MEMLAT-DONE"
