"""HTTP for the profiler sources: one session factory (with retries), small
GETs for metadata and checksum files, and a streaming download that hashes
as it writes and reports progress through a callback."""
from __future__ import annotations

import hashlib
import logging
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from ..errors import ProfilerError
from .base import CHUNK, HINT_NETWORK, DownloadError, Progress

log = logging.getLogger(__name__)

MAX_SMALL_BODY = 1 << 20             # metadata and checksum files
CONNECT_TIMEOUT_CAP = 10.0           # a black-holed host should not cost a full read timeout

# Retries happen before a body is read: a connection that breaks mid-download is reported, not resumed.
# raise_on_status=False hands back the last 5xx/429 response so the error names its status.
RETRY = Retry(total=3, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504),
              allowed_methods={"GET", "HEAD"}, raise_on_status=False)


def new_session(retry: Retry = RETRY) -> requests.Session:
    sess = requests.Session()
    sess.headers["User-Agent"] = f"flamekit-profiler-installer python-requests/{requests.__version__}"
    adapter = HTTPAdapter(max_retries=retry)
    sess.mount("https://", adapter)
    sess.mount("http://", adapter)
    return sess


def timeouts(timeout: float) -> tuple[float, float]:
    return (min(float(timeout), CONNECT_TIMEOUT_CAP), float(timeout))


def short_reason(exc: BaseException) -> str:
    text = str(exc)
    for pattern in (r"\[Errno -?\d+\] ([^'\")\]]+)", r"(Read timed out)", r"(Connection reset by peer)",
                    r"(IncompleteRead\([^)]*\))", r"(Connection broken: [A-Za-z]+)"):
        m = re.search(pattern, text)
        if m:
            return m.group(1).strip().rstrip(".")
    return type(exc).__name__


def network_error(url: str, exc: requests.exceptions.RequestException) -> ProfilerError:
    host = urlsplit(url).netloc or url
    if isinstance(exc, (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
                        requests.exceptions.InvalidURL)):
        return ProfilerError(f"invalid download URL {url!r}",
                             hint="fix the configured URL (profiler.github_url / profiler.maven_repo)")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return DownloadError(f"timed out connecting to {host} for {url}", hint=HINT_NETWORK)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return DownloadError(f"timed out waiting for {url}", hint=HINT_NETWORK)
    if isinstance(exc, requests.exceptions.SSLError):
        return DownloadError(f"TLS failure talking to {host} for {url}: {short_reason(exc)}", hint=HINT_NETWORK)
    if isinstance(exc, requests.exceptions.ConnectionError):
        return DownloadError(f"cannot reach {host} for {url}: {short_reason(exc)}", hint=HINT_NETWORK)
    return DownloadError(f"request for {url} failed: {short_reason(exc)}", hint=HINT_NETWORK)


def _status_error(resp: requests.Response, url: str) -> DownloadError:
    return DownloadError(f"HTTP {resp.status_code} {resp.reason or ''} for {url}".replace("  ", " "), hint=HINT_NETWORK)


def get_small(sess: requests.Session, url: str, timeout: float) -> bytes | None:
    """GET a small text resource; None on 404/410, DownloadError otherwise."""
    try:
        with sess.get(url, stream=True, timeout=timeouts(timeout)) as resp:
            if resp.status_code in (404, 410):
                return None
            if resp.status_code != 200:
                raise _status_error(resp, url)
            body = b""
            for chunk in resp.iter_content(CHUNK):
                body += chunk
                if len(body) > MAX_SMALL_BODY:
                    raise ProfilerError(f"{url} is larger than {MAX_SMALL_BODY} bytes; not a metadata or checksum file",
                                        hint="check the Maven repository URL (profiler.maven_repo)")
            return body
    except requests.exceptions.RequestException as exc:
        raise network_error(url, exc) from None
    except urllib3.exceptions.HTTPError as exc:
        raise DownloadError(f"request for {url} failed: {short_reason(exc)}", hint=HINT_NETWORK) from None


def download(sess: requests.Session, url: str, dest: Path, timeout: float, progress: Progress | None,
             extra_algo: str | None = None) -> tuple[int, dict[str, str], float]:
    """Stream ``url`` into ``dest``; return (bytes, {algo: hexdigest}, seconds).

    Checks the status and that the body has the announced length."""
    hashers = {"sha256": hashlib.sha256()}
    if extra_algo and extra_algo not in hashers:
        hashers[extra_algo] = hashlib.new(extra_algo)
    started = time.monotonic()
    done = 0
    try:
        resp = sess.get(url, stream=True, timeout=timeouts(timeout), headers={"Accept-Encoding": "identity"})
    except requests.exceptions.RequestException as exc:
        raise network_error(url, exc) from None
    with resp:
        if resp.status_code != 200:
            raise _status_error(resp, url)
        encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
        try:
            total = None if encoded else int(resp.headers["Content-Length"])
        except (KeyError, ValueError):
            total = None
        if progress:
            progress(0, total)
        try:
            with open(dest, "wb") as fh:
                for chunk in resp.iter_content(CHUNK):
                    if not chunk:
                        continue
                    fh.write(chunk)
                    for h in hashers.values():
                        h.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            reason = short_reason(exc)
            if "timed out" in reason.lower():
                raise DownloadError(f"timed out reading {url} ({done} bytes received)", hint=HINT_NETWORK) from None
            expected = f" of {total} bytes" if total is not None else ""
            raise DownloadError(f"truncated download of {url}: the connection ended before the end{expected} ({reason})",
                                hint=HINT_NETWORK) from None
        except OSError as exc:
            raise ProfilerError(f"cannot write the download to {dest.parent}: {exc.strerror or exc}",
                                hint="free some disk space or choose another profiler directory") from None
    if total is not None and done != total:
        raise DownloadError(f"truncated download of {url}: got {done} of {total} bytes", hint=HINT_NETWORK)
    seconds = time.monotonic() - started
    log.info("downloaded %s: %d bytes in %.2f s", url, done, seconds)
    return done, {a: h.hexdigest() for a, h in hashers.items()}, seconds
