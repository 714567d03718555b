"""`inv up --profiling`: the demo JVMs and a user's own compose project, configured only."""
from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from flamekit import config as fkconfig
from flamekit.targets import compose as fkstack
from flamekit.capture.jvm import jvm_of
from tests.integration.conftest import INV, ROOT, DemoStack, free_port, stack_env

FLAGS = ("-XX:+PreserveFramePointer", "-XX:+UnlockDiagnosticVMOptions", "-XX:+DebugNonSafepoints")


def test_every_demo_jvm_is_profilable(demo_stack):
    s = fkconfig.build_settings({"project_name": demo_stack.project}, ROOT)
    st = fkstack.ComposeTarget(s)
    for svc in s.jvm_services:
        out = st.exec(svc, ["/opt/async-profiler/bin/asprof", "--version"])
        assert "4.3" in out, (svc, out)
        info = jvm_of(st, svc, FLAGS)
        assert info.source == "perfdata"
        assert info.flags_missing == (), (svc, info.args)
        got = st.privileges(svc, "/opt/async-profiler")
        assert "SYS_PTRACE" in got.cap_add and "seccomp:unconfined" in got.security_opt
        assert got.profiler_mount_ro is True


def test_up_reports_the_checks(demo_stack):
    out = demo_stack.inv("up", "--profiling").stdout
    for svc in ("gateway", "order-service", "inventory-service", "payment-service"):
        assert f"{svc}: profiler ok (Async-profiler 4.3" in out
    assert "flags active" in out and "MISSING" not in out


USER_APP = """
import java.util.concurrent.locks.LockSupport;
public class Billing {
    public static void main(String[] args) {
        long x = 0;
        while (true) { for (int i = 0; i < 1_000_000; i++) x += i ^ (x >>> 3); LockSupport.parkNanos(5_000_000L); if (x == 42) System.out.println(x); }
    }
}
"""


@pytest.fixture(scope="module")
def user_project(docker_engine, images, profiler_installed, tmp_path_factory):
    """A compose project of the user's: other names, java as PID 1, its own JAVA_TOOL_OPTIONS."""
    d = tmp_path_factory.mktemp("userproj")
    (d / "app").mkdir()
    (d / "app" / "Billing.java").write_text(USER_APP)
    (d / "app" / "Dockerfile").write_text(textwrap.dedent(f"""\
        FROM {images.build_image} AS build
        COPY Billing.java /src/
        RUN javac -d /out /src/Billing.java
        FROM {images.base_image}
        COPY --from=build /out /app
        ENV JAVA_TOOL_OPTIONS="-Dledger.from=image -Xss2m"
        ENTRYPOINT ["java", "-cp", "/app", "Billing"]
        """))
    (d / "compose.yml").write_text(textwrap.dedent("""\
        services:
          billing-worker:
            build: ./app
            image: flamekit-test/billing:latest
            environment:
              JAVA_TOOL_OPTIONS: "-Dbilling.mode=batch -Xss1m"
              OTHER_SETTING: kept
          ledger:
            image: flamekit-test/billing:latest
          sidecar:
            image: flamekit-test/billing:latest
            entrypoint: ["sleep", "infinity"]
        """))
    project = f"fkuser{os.getpid()}"
    (d / "flamekit.yaml").write_text(textwrap.dedent(f"""\
        flamekit:
          project_dir: {d}
          compose_files: [compose.yml]
          project_name: {project}
          profiling_override: ""
          jvm_services: [billing-worker, ledger, sidecar]
          demo: false
          sample_data: ""
          service: billing-worker
        """))
    out = tmp_path_factory.mktemp("userout")
    env = stack_env(project, free_port(), out)
    env.pop("INVOKE_FLAMEKIT_PROJECT_NAME")
    st = DemoStack(project, 0, env, out)
    before = (d / "compose.yml").read_bytes()
    subprocess.run(["docker", "compose", "-f", str(d / "compose.yml"), "-p", project, "build", "-q"],
                   check=True, timeout=600, capture_output=True)
    try:
        yield d, st
    finally:
        st.inv("-f", str(d / "flamekit.yaml"), "down", check=False)
        assert (d / "compose.yml").read_bytes() == before, "the user's compose file changed"


def test_user_project_becomes_profilable_by_configuration(user_project):
    d, st = user_project
    cfg = str(d / "flamekit.yaml")
    printed = st.inv("-f", cfg, "profiling-override").stdout
    assert "billing-worker:" in printed and "sidecar:" in printed
    assert "-Dbilling.mode=batch -Xss1m -XX:+PreserveFramePointer" in printed
    up = st.inv("-f", cfg, "up", "--profiling")
    assert "billing-worker: profiler ok" in up.stdout
    s = fkconfig.build_settings({"project_dir": str(d), "compose_files": "compose.yml",
                                 "project_name": st.project, "jvm_services": "billing-worker,ledger,sidecar"}, ROOT)
    stack = fkstack.ComposeTarget(s)
    info = jvm_of(stack, "billing-worker", FLAGS)
    assert info.pid == 1  # exec-form entrypoint: java is PID 1 here
    assert info.flags_missing == ()
    assert "-Dbilling.mode=batch" in info.args and "-Xss1m" in info.args  # the service's own options kept
    env = stack.exec("billing-worker", ["sh", "-c", "echo $OTHER_SETTING"]).strip()
    assert env == "kept"
    assert "4.3" in stack.exec("billing-worker", ["/opt/async-profiler/bin/asprof", "--version"])
    # h: the options the IMAGE gives its JVM (ENV JAVA_TOOL_OPTIONS) survive the override
    ledger = jvm_of(stack, "ledger", FLAGS)
    assert ledger.flags_missing == () and "-Dledger.from=image" in ledger.args and "-Xss2m" in ledger.args
    assert "ledger: profiler ok" in up.stdout and "options MISSING" not in up.stdout

    # a container without a JVM: one clear line, non-zero exit, nothing written
    bad = st.inv("-f", cfg, "profile", "--service", "sidecar", "--no-load", "--duration", "2", check=False)
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines()[-1] == \
        "error: no JVM (process named java) runs in sidecar: check that this service runs Java, " \
        "or fix flamekit.jvm_services"
    assert "Traceback" not in bad.stderr

    # and the user's JVM really profiles, without any load generator
    ok = st.inv("-f", cfg, "profile", "--no-load", "--duration", "4", "--event", "cpu")
    assert "billing-worker cpu:" in ok.stdout


def test_up_profiling_without_profiler_is_one_line(demo_stack, tmp_path):
    p = demo_stack.inv("up", "--profiling", check=False,
                       extra_env={"INVOKE_FLAMEKIT_PROFILER_DIR": str(tmp_path / "none"),
                                  "INVOKE_FLAMEKIT_PROFILING_OVERRIDE": ""})
    assert p.returncode != 0
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("error: async-profiler is not installed") and "inv download-profiler" in last
