"""Base images of the demo stack: the eclipse-temurin defaults, or offline Debian equivalents.

The offline images come from ONE debootstrap of bookworm minbase with the OpenJDK 17 JDK
(a JDK runs the services as well as a JRE does, and brings jcmd/jfr): the rootfs is imported
as the build image and the same image is tagged as the runtime image. Both names stay
configurable (offline_build_image, offline_base_image); a runtime image that already exists
under its name is reused as it is.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import ImageError
from ..util import last_line
from .engine import Result, Runner, Say, apt_install, run

log = logging.getLogger(__name__)

OFFLINE_SUITE = "bookworm"
OFFLINE_PACKAGES = ("openjdk-17-jdk-headless", "procps")
MODES = ("auto", "default", "offline")


@dataclass(frozen=True)
class ImageChoice:
    build_image: str
    base_image: str
    how: str  # "default" | "offline"

    def compose_env(self) -> dict[str, str]:
        return {"FLAMEKIT_BUILD_IMAGE": self.build_image, "FLAMEKIT_BASE_IMAGE": self.base_image}


def image_present(name: str, runner: Runner = run) -> bool:
    return runner(["docker", "image", "inspect", "--format", "{{.Id}}", name], timeout=30).returncode == 0


def try_pull(name: str, runner: Runner = run, timeout: float = 300) -> Result:
    return runner(["docker", "pull", "--quiet", name], timeout=timeout)


def tag_image(source: str, tag: str, runner: Runner = run) -> None:
    res = runner(["docker", "tag", source, tag], timeout=60)
    if res.returncode != 0:
        raise ImageError(f"docker tag {source} {tag} failed: " + last_line(res.stderr), "check the engine")


def _checked(res: Result, what: str, hint: str) -> None:
    if res.returncode != 0:
        raise ImageError(f"{what} failed: " + last_line(res.stderr or res.stdout), hint)


def build_offline_image(
    tags: Sequence[str],
    mirror: str,
    runner: Runner = run,
    *,
    workdir: Path | None = None,
    is_root: bool | None = None,
    say: Say = lambda s: None,
) -> float:
    """debootstrap bookworm minbase + OpenJDK 17 JDK + procps once, `docker import` it as
    ``tags[0]`` and `docker tag` it as every other tag. Returns the seconds it took."""
    if not tags:
        raise ValueError("build_offline_image needs at least one tag")
    first = tags[0]
    if not ((os.geteuid() == 0) if is_root is None else is_root):
        raise ImageError(
            f"cannot build {first}: debootstrap needs root",
            "run `sudo inv base-images --offline`, or make eclipse-temurin images available (docker pull/load)",
        )
    if shutil.which("debootstrap") is None:
        say("installing debootstrap (apt-get)")
        apt_install("debootstrap", runner, ImageError, "install debootstrap and retry")
    start = time.monotonic()
    packages = ",".join(OFFLINE_PACKAGES)
    with tempfile.TemporaryDirectory(prefix="flamekit-rootfs-", dir=workdir or "/var/tmp") as tmp:
        rootfs, tarball = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar"
        say(f"debootstrap {OFFLINE_SUITE} minbase + {packages} (about a minute)")
        _checked(runner(["debootstrap", "--variant=minbase", f"--include={packages}", OFFLINE_SUITE,
                         str(rootfs), mirror], timeout=1800),
                 f"debootstrap for {first}", f"check that {mirror} is reachable")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            d = rootfs / junk
            if d.is_dir():
                for child in d.iterdir():
                    if child.is_file():
                        child.unlink()
        # a tarball file, not a pipe: every step goes through the runner, and the rootfs can
        # be removed before the engine stores its own copy
        _checked(runner(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], timeout=600),
                 "packing the rootfs", "check the free disk space of " + str(workdir or "/var/tmp"))
        shutil.rmtree(rootfs, ignore_errors=True)
        say(f"docker import -> {first}")
        _checked(runner(["docker", "import", "--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["bash"]',
                         str(tarball), first], timeout=600),
                 f"docker import of {first}", "check the engine's free disk space")
    for tag in tags[1:]:
        say(f"docker tag {first} {tag}")
        tag_image(first, tag, runner)
    return time.monotonic() - start


def _ensure_offline(offline: tuple[str, str], mirror: str, runner: Runner, say: Say,
                    rebuild: bool) -> ImageChoice:
    build, base = offline
    have_build = not rebuild and image_present(build, runner)
    have_base = not rebuild and image_present(base, runner)
    if have_build and have_base:
        say(f"{build} and {base} present, reused")
    elif have_build:
        say(f"{build} present; tagging it as {base} (a JDK image runs the services too)")
        tag_image(build, base, runner)
    else:
        tags = [build] if have_base or base == build else [build, base]
        if have_base:
            say(f"{base} present, reused")
        secs = build_offline_image(tags, mirror, runner, say=say)
        say(f"built {' and '.join(tags)} in {secs:.0f}s")
    return ImageChoice(build, base, "offline")


def ensure_images(
    mode: str,
    default: tuple[str, str],
    offline: tuple[str, str],
    mirror: str,
    runner: Runner = run,
    say: Say = lambda s: None,
    rebuild: bool = False,
) -> ImageChoice:
    """Pick (build, base) images: the defaults when present or pullable, else offline builds.

    mode: "default" requires the eclipse-temurin defaults, "offline" always uses local
    debootstrap images, "auto" tries the defaults first.
    """
    if mode not in MODES:
        raise ImageError(f"unknown images mode {mode!r}", "use auto, default or offline")
    if mode == "auto" and not rebuild:
        have_default = all(image_present(img, runner) for img in default)
        if not have_default and all(image_present(img, runner) for img in offline):
            say(f"using the offline base images {offline[0]} and {offline[1]} (built earlier)")
            return ImageChoice(offline[0], offline[1], "offline")
    if mode in ("auto", "default"):
        failures = []
        for img in default:
            if image_present(img, runner):
                continue
            say(f"pulling {img}")
            res = try_pull(img, runner)
            if res.returncode != 0:
                failures.append(f"{img}: {last_line(res.stderr)}")
        if not failures:
            return ImageChoice(default[0], default[1], "default")
        if mode == "default":
            raise ImageError("cannot pull " + "; ".join(failures),
                             "run `inv base-images --offline` to build local equivalents")
        say("default images cannot be pulled; using offline Debian bookworm equivalents")
    return _ensure_offline(offline, mirror, runner, say, rebuild)
