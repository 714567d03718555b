"""`inv up --profiling` checks, per JVM service: the profiler is mounted and runs, the
privileges asked for are in place, and the running JVM has the profiling flags *and still*
every option the service gave it itself (compose environment or image ENV)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..config import Settings
from ..errors import FlamekitError
from ..targets.override import expected_jvm_options, image_envs, privileges_for
from . import jvm as fkjvm


def verify(target, settings: Settings) -> list[str]:
    lines = []
    want = privileges_for(settings.privileges)
    if target.kind == "swarm":  # stack deploy ignores security_opt: seccomp stays at its default
        want.pop("security_opt", None)
    resolved = target.config()
    envs = image_envs(settings, target, resolved)

    def check(name: str, replica) -> tuple[int, str]:
        got = target.privileges(replica, settings.profiler.container_path)
        caps_ok = (settings.privileges == "minimal"  # PERFMON only where the engine knows it
                   or (set(want.get("cap_add", [])) <= got.cap_add
                       and set(want.get("security_opt", [])) <= got.security_opt))
        rc, out, _ = target.exec_result(replica, [f"{settings.profiler.container_path}/bin/asprof", "--version"])
        mount_ok = rc == 0 and out.strip() != "" and got.profiler_mount_ro is not False
        expected = expected_jvm_options(settings, resolved, name, envs.get(name))
        try:
            info = fkjvm.jvm_of(target, replica, expected)
            flags_ok = not info.flags_missing
            jvm_text = (f"JVM {info.pid} flags active" if flags_ok else
                        f"JVM {info.pid} options MISSING: {' '.join(info.flags_missing)}")
        except FlamekitError as exc:
            flags_ok = False
            jvm_text = f"JVM NOT FOUND ({exc.message})"
        version = out.strip().splitlines()[0] if mount_ok else ""
        return ((not caps_ok) + (not mount_ok) + (not flags_ok),
                f"{replica.label}: profiler {'ok (' + version + ')' if mount_ok else 'MISSING'}; "
                f"privileges {settings.privileges} {'ok' if caps_ok else 'MISSING ' + str(want)}; {jvm_text}")

    todo = [(name, r) for name in settings.jvm_services for r in target.replicas(name)]
    # every container at once: each check is a few docker execs (~0.7 s), one after the other was ~3 s
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(todo))), thread_name_prefix="check") as pool:
        results = list(pool.map(lambda t: check(*t), todo))
    problems = sum(n for n, _ in results)
    lines.extend(line for _, line in results)
    if problems:
        lines.append(f"warning: {problems} profiling check(s) failed; see above")
    return lines
