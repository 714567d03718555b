"""A fake Target: containers as dicts, asprof as a state machine. No Docker."""
from __future__ import annotations

import os
import signal
from pathlib import Path

from flamekit.capture.jvm import PROC_LIST_COMMAND
from flamekit.targets.base import ContainerPrivileges, Replica, ServiceState, Target

COLLAPSED = {
    "cpu": "java.lang.Thread.run;demo.order.PricingEngine.priceOrder 90\njava.lang.Thread.run;demo.X.y 10\n",
    "alloc": "java.lang.Thread.run;demo.order.OrderJson.write;byte[] 4096\n",
    "wall": "java.lang.Thread.run;demo.pay.CardAuthorizer.authorize 50\n",
    "lock": "java.lang.Thread.run;demo.inv.StockLedger.reserve 7000\n",
}


class FakeTarget(Target):
    kind = "fake"

    def __init__(self, services=("order-service",), replicas=1, hooks=None):
        self.project = "fake"
        self.services = {s: replicas for s in services}
        self.log: list[tuple[str, str]] = []      # (container label, action)
        self.active: dict[str, bool] = {}
        self.files: dict[tuple[str, str], str] = {}
        self.hooks = hooks or {}                   # action -> callable(replica)
        self.down_called = False
        self.paranoid = "2"                        # the host's perf_event_paranoid, as containers see it
        self.start_args: dict[str, list[str]] = {}  # container label -> the last asprof start command

    # lifecycle
    def config(self):
        return {"services": {s: {"image": f"img/{s}"} for s in self.services}}

    def up(self, build=False, timeout=None):
        self.log.append(("*", "up"))

    def down(self):
        self.down_called = True
        self.log.append(("*", "down"))

    def ps(self):
        return [ServiceState(s, f"{s}-1", "running", "healthy", "", f"img/{s}") for s in self.services]

    def wait_healthy(self, timeout, services=None, tick=None):
        return self.ps()

    def replicas(self, service):
        n = self.services[service]
        return [Replica(service, i, f"fake-{service}-{i}", id=f"id-{service}-{i}", of=n) for i in range(1, n + 1)]

    def _hook(self, action, r):
        h = self.hooks.get(action)
        if h:
            h(r)

    def exec_result(self, where, command):
        r = self.replica(where)
        cmd = list(command)
        if cmd == PROC_LIST_COMMAND:
            return 0, "1\tsh\tsh -c java -jar app.jar\n7\tjava\tjava -jar app.jar\n", ""
        if cmd[:2] == ["sh", "-c"] and "hsperfdata" in cmd[2]:
            return 1, "", ""
        if cmd[0] == "cat" and cmd[1].endswith("/environ"):
            return 0, "JAVA_TOOL_OPTIONS=-XX:+PreserveFramePointer -XX:+UnlockDiagnosticVMOptions " \
                      "-XX:+DebugNonSafepoints\0", ""
        if cmd[:2] == ["sh", "-c"] and "cgroup_cpu_ns" in cmd[2]:
            inner = cmd[4:]
            rc, out, err = self._asprof(r, inner)
            return rc, "cgroup_cpu_ns=" + str(10**9 * (len(self.log) + 1)) + "\n" + out, err
        if cmd[0].endswith("/asprof"):
            return self._asprof(r, cmd)
        if cmd[0].endswith("/jfrconv"):
            self._hook("convert", r)
            event = cmd[1].removeprefix("--")
            out = cmd[-1]
            self.log.append((r.label, f"jfrconv {event} {out.rsplit('/', 1)[-1]}"))
            self.files[(r.label, out)] = COLLAPSED[event] if out.endswith("collapsed") else f"<html>{event}</html>"
            return 0, "", ""
        if cmd == ["cat", "/proc/sys/kernel/perf_event_paranoid"]:
            return (0, self.paranoid + "\n", "") if self.paranoid is not None else (1, "", "No such file")
        if cmd[0] in ("rm", "mkdir"):
            return 0, "", ""
        return 127, "", f"unknown command {cmd}"

    def _asprof(self, r, cmd):
        action = cmd[1]
        if action == "--version":
            return 0, "Async-profiler 4.3 built on Jan 13 2026\n", ""
        if action == "jcmd":  # Thread.print -e: each dump 1 MiB further on per thread
            self.dumps = getattr(self, "dumps", 0) + 1
            return 0, "".join(f'"exec-{i}" #{20 + i} daemon prio=5 os_prio=0 cpu=1ms elapsed=1s '
                              f'allocated={self.dumps * (i + 1)}M defined_classes=0 tid=0x1 nid=0x2 runnable\n'
                              for i in range(2)), ""
        if action == "status":
            return 0, ("Profiling is running for 3 seconds" if self.active.get(r.label) else "Profiler is not active"), ""
        self.log.append((r.label, action))
        self._hook(action, r)
        if action == "start":
            self.start_args[r.label] = cmd
            self.active[r.label] = True
            self.files[(r.label, cmd[cmd.index("-f") + 1])] = "JFR engine ctimer"
            return 0, "Profiling started\n", ""
        if action == "stop":
            was = self.active.pop(r.label, False)
            return (0, "OK\n", "") if was else (200, "", "Profiler is not active\n")
        return 1, "", "?"

    def copy_from(self, where, src, dest: Path):
        r = self.replica(where)
        if src.endswith(".out"):
            dest.mkdir(parents=True, exist_ok=True)
            for (label, path), text in list(self.files.items()):
                if label == r.label and path.startswith(src + "/"):
                    (dest / path.rsplit("/", 1)[1]).write_text(text)
            return dest
        if (r.label, src) not in self.files:
            from flamekit.errors import StackError
            raise StackError(f"no {src} in {r.label}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(self.files[(r.label, src)])
        return dest

    def image_id(self, where):
        return "sha256:fake"

    def image_env(self, image):
        return {}

    def privileges(self, where, mount_path):
        return ContainerPrivileges(frozenset({"SYS_PTRACE"}), frozenset({"seccomp:unconfined"}), True)

    def facts(self):
        return {"server_version": "20.10", "architecture": "x86_64", "cgroup_version": "1", "cpus": "2"}


def send(sig):
    """A hook that delivers a signal to this process, as Ctrl-C or `kill` would."""
    return lambda r: os.kill(os.getpid(), sig)


SIGINT, SIGTERM = signal.SIGINT, signal.SIGTERM
