"""Integration fixtures: a real engine, real images, the real profiler, the real demo stack.

Each test session brings up its own compose project (a per-run name and a free
gateway port), so it never collides with a developer's `make demo`, and tears it
down in `finally`. Without an engine the docker tests skip -- except under
--require-docker (on by default when CI=true), where they fail.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from flamekit import config as fkconfig
from flamekit.setup import engine as fkengine

ROOT = Path(__file__).resolve().parents[2]
INV = [sys.executable, "-m", "invoke"]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/integration" in str(item.fspath) and "browser" not in item.keywords:
            item.add_marker(pytest.mark.docker)
    # The scale-out tests run last: after them, on dockerd 20.10, the embedded DNS of a compose
    # network that was already up stopped answering (seen twice, not yet explained; networks
    # created afterwards resolve fine), which broke the shared demo stack of later tests.
    items.sort(key=lambda item: item.fspath.basename == "test_scale.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def docker_engine(request):
    res = fkengine.engine_ok()
    if res.returncode != 0 or not fkengine.compose_ok():
        msg = f"no Docker engine answers `docker info` ({res.stderr.strip()[:120]}); run `inv engine`"
        if request.config.getoption("--require-docker"):
            pytest.fail(msg + " (--require-docker / CI=true: docker tests never skip)")
        pytest.skip(msg)
    return res.stdout.strip()


@pytest.fixture(scope="session")
def images(docker_engine):
    s = fkconfig.build_settings({}, ROOT)
    from flamekit.setup import images as fkimages
    return fkimages.ensure_images(s.images, (s.build_image, s.base_image),
                                  (s.offline_build_image, s.offline_base_image), s.debian_mirror)


@pytest.fixture(scope="session")
def profiler_installed(docker_engine):
    """The real async-profiler, from Maven Central when GitHub is unreachable (as in CI)."""
    from flamekit.profiler import install as profiler
    s = fkconfig.build_settings({}, ROOT)
    res = profiler.install_profiler(
        profiler.ProfilerRequest(version=s.profiler.version, arch="x64" if os.uname().machine == "x86_64" else "arm64",
                                 source="maven" if os.environ.get("CI") else s.profiler.source,
                                 github_url_template=s.profiler.github_url, maven_repo_url=s.profiler.maven_repo),
        s.profiler.dir)
    return res


@dataclass
class DemoStack:
    project: str
    port: int
    env: dict
    out: Path

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inv(self, *args: str, check: bool = True, timeout: float = 900, extra_env: dict | None = None):
        env = dict(os.environ)
        env.update(self.env)
        env.update(extra_env or {})
        p = subprocess.run(INV + list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"inv {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p


def stack_env(project: str, port: int, out: Path) -> dict:
    return {
        "INVOKE_FLAMEKIT_PROJECT_NAME": project,
        "INVOKE_FLAMEKIT_GATEWAY_URL": f"http://127.0.0.1:{port}",
        "FLAMEKIT_GATEWAY_PORT": str(port),
        "INVOKE_FLAMEKIT_RUNS_DIR": str(out / "runs"),
        "INVOKE_FLAMEKIT_FLAMEGRAPH_DIR": str(out / "flamegraphs"),
        "INVOKE_FLAMEKIT_REPORTS_DIR": str(out / "reports"),
        "INVOKE_FLAMEKIT_OUTPUT_DIR": str(out / "output"),
        "NO_COLOR": "1",
    }


@pytest.fixture(scope="session")
def demo_stack(docker_engine, images, profiler_installed, tmp_path_factory):
    """The demo stack up with profiling, healthy, with sample data; torn down at the end."""
    project = f"fktest{os.getpid()}"
    port = free_port()
    out = tmp_path_factory.mktemp("flamekit-out")
    st = DemoStack(project, port, stack_env(project, port, out), out)
    base = (ROOT / "docker" / "docker-compose.yml").read_bytes()
    try:
        t0 = time.monotonic()
        st.inv("up", "--profiling", "--build")
        st.startup_seconds = time.monotonic() - t0
        st.inv("sample-data")
        yield st
    finally:
        st.inv("down", check=False)
        assert (ROOT / "docker" / "docker-compose.yml").read_bytes() == base, "base compose file changed"
