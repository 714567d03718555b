"""The JVM inside a container: find its PID by process name, read its flags and version.

Java is often not PID 1 (``sh -c "java $JAVA_OPTS -jar app.jar"``) and
``pgrep -f java`` also matches that wrapper, so processes are matched on their
*name* (/proc/PID/comm == "java"). Flags and version come from the JVM's own
PerfData file (/tmp/hsperfdata_<user>/<pid>), which holds the arguments the JVM
actually started with, JAVA_TOOL_OPTIONS included.
"""
from __future__ import annotations

import logging
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import CaptureError, FlamekitError

log = logging.getLogger(__name__)

# A constant script (no user input): one "pid<TAB>comm<TAB>cmdline" line per process.
PROC_LIST_SCRIPT = (
    'for d in /proc/[0-9]*; do '
    'p=${d#/proc/}; c=$(cat "$d/comm" 2>/dev/null) || continue; '
    'a=$(tr "\\000" " " < "$d/cmdline" 2>/dev/null); '
    'printf "%s\\t%s\\t%s\\n" "$p" "$c" "$a"; done'
)
PROC_LIST_COMMAND = ["sh", "-c", PROC_LIST_SCRIPT]


@dataclass(frozen=True)
class Proc:
    pid: int
    comm: str
    cmdline: str


def parse_proc_list(text: str) -> list[Proc]:
    out = []
    for line in text.splitlines():
        parts = line.split("\t", 2)
        if len(parts) < 2 or not parts[0].strip().isdigit():
            continue
        out.append(Proc(int(parts[0]), parts[1].strip(), parts[2].strip() if len(parts) > 2 else ""))
    return sorted(out, key=lambda p: p.pid)


def java_processes(procs: Sequence[Proc]) -> list[Proc]:
    """Processes whose name is java: never the `sh -c "java ..."` wrapper."""
    return [p for p in procs if p.comm == "java"]


def choose_pid(service: str, procs: Sequence[Proc], pid: int | None = None) -> Proc:
    javas = java_processes(procs)
    if pid is not None:
        for p in javas:
            if p.pid == pid:
                return p
        listed = ", ".join(str(p.pid) for p in javas) or "none"
        raise CaptureError(f"PID {pid} is not a JVM in {service} (JVMs: {listed})",
                           "pick one of the listed PIDs with --pid")
    if not javas:
        raise CaptureError(f"no JVM (process named java) runs in {service}",
                           "check that this service runs Java, or fix flamekit.jvm_services")
    if len(javas) > 1:
        listed = "; ".join(f"{p.pid}: {p.cmdline[:80]}" for p in javas)
        raise CaptureError(f"several JVMs run in {service} ({listed})", "choose one with --pid")
    return javas[0]


# ------------------------------------------------------------------ PerfData
PERFDATA_MAGIC = 0xCAFEC0C0


def parse_perfdata(data: bytes) -> dict[str, object]:
    """Decode a HotSpot PerfData (hsperfdata) file: counter name -> str or int."""
    if len(data) < 32:
        raise ValueError("perfdata too short")
    (magic,) = struct.unpack(">I", data[0:4])
    if magic != PERFDATA_MAGIC:
        raise ValueError("not a hsperfdata file")
    order = "<" if data[4] == 1 else ">"
    major = data[5]
    if major != 2:
        raise ValueError(f"unsupported perfdata version {major}")
    entry_offset, num_entries = struct.unpack(order + "II", data[24:32])
    out: dict[str, object] = {}
    pos = entry_offset
    for _ in range(num_entries):
        if pos + 20 > len(data):
            break
        entry_len, name_off, vec_len, dtype, _flags, _units, _var, data_off = struct.unpack(
            order + "IIIBBBBI", data[pos:pos + 20])
        if entry_len == 0:
            break
        name_end = data.index(b"\0", pos + name_off)
        name = data[pos + name_off:name_end].decode("utf-8", "replace")
        start = pos + data_off
        if dtype == ord("J") and vec_len == 0:
            (out[name],) = struct.unpack(order + "q", data[start:start + 8])
        elif dtype == ord("B") and vec_len > 0:
            raw = data[start:start + vec_len]
            out[name] = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
        pos += entry_len
    return out


@dataclass(frozen=True)
class JvmInfo:
    pid: int
    version: str = ""
    vm_name: str = ""
    args: tuple[str, ...] = ()
    command: str = ""
    source: str = "perfdata"
    flags_expected: tuple[str, ...] = ()
    flags_missing: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {"pid": self.pid, "version": self.version, "vm_name": self.vm_name,
                "args": list(self.args), "command": self.command, "source": self.source,
                "flags_expected": list(self.flags_expected), "flags_missing": list(self.flags_missing)}


def missing_flags(args: Sequence[str], expected: Sequence[str]) -> tuple[str, ...]:
    """Expected -XX flags not in effect; the last occurrence of a boolean flag wins."""
    state: dict[str, str] = {}
    for a in args:
        if a.startswith("-XX:+") or a.startswith("-XX:-"):
            state[a[5:]] = a[4]
        elif a.startswith("-XX:") and "=" in a:
            k, v = a[4:].split("=", 1)
            state[k] = v
    missing = []
    for flag in expected:
        if flag.startswith("-XX:+") or flag.startswith("-XX:-"):
            if state.get(flag[5:]) != flag[4]:
                missing.append(flag)
        elif flag.startswith("-XX:") and "=" in flag:
            k, v = flag[4:].split("=", 1)
            if state.get(k) != v:
                missing.append(flag)
        elif flag not in args:
            missing.append(flag)
    return tuple(missing)


def jvm_info_from_perfdata(pid: int, counters: Mapping[str, object], expected: Sequence[str]) -> JvmInfo:
    args = tuple(str(counters.get("java.rt.vmArgs", "")).split())
    return JvmInfo(
        pid=pid,
        version=str(counters.get("java.property.java.version")
                    or counters.get("java.property.java.vm.version") or ""),
        vm_name=str(counters.get("java.property.java.vm.name", "")),
        args=args,
        command=str(counters.get("sun.rt.javaCommand", "")),
        source="perfdata",
        flags_expected=tuple(expected),
        flags_missing=missing_flags(args, expected),
    )


def jvm_info_from_environ(pid: int, cmdline: str, environ: str, expected: Sequence[str]) -> JvmInfo:
    """Fallback when the JVM runs with -XX:-UsePerfData: its command line plus JAVA_TOOL_OPTIONS."""
    tool = ""
    for item in environ.split("\0"):
        if item.startswith("JAVA_TOOL_OPTIONS="):
            tool = item.split("=", 1)[1]
    args = tuple(tool.split()) + tuple(a for a in cmdline.split() if a.startswith("-"))
    return JvmInfo(pid=pid, args=args, command=cmdline, source="environ",
                   flags_expected=tuple(expected), flags_missing=missing_flags(args, expected))


def jvm_of(target, where, expected_flags: Sequence[str], pid: int | None = None) -> JvmInfo:
    """Find the JVM in a container (a Replica, or a service's only container) and read its
    arguments from its PerfData; fall back to its command line and environment."""
    out = target.exec(where, PROC_LIST_COMMAND, what=f"listing processes in {getattr(where, 'label', where)}")
    proc = choose_pid(getattr(where, "label", where), parse_proc_list(out), pid)
    rc, path, _ = target.exec_result(where, ["sh", "-c", 'ls /tmp/hsperfdata_*/"$1" 2>/dev/null | head -n 1',
                                             "sh", str(proc.pid)])
    path = path.strip()
    if rc == 0 and path:
        with tempfile.TemporaryDirectory(prefix="flamekit-perfdata-") as tmp:
            local = Path(tmp) / "perfdata"
            try:
                target.copy_from(where, path, local)
                return jvm_info_from_perfdata(proc.pid, parse_perfdata(local.read_bytes()), expected_flags)
            except (FlamekitError, ValueError, OSError) as exc:
                log.debug("perfdata of %s unreadable: %s", where, exc)
    rc, environ, _ = target.exec_result(where, ["cat", f"/proc/{proc.pid}/environ"])
    return jvm_info_from_environ(proc.pid, proc.cmdline, environ if rc == 0 else "", expected_flags)
