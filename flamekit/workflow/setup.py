"""Getting ready: async-profiler installed (and proven to run in the stack's image)."""
from __future__ import annotations

from pathlib import Path

from .. import ui
from ..config import Settings


def engine_arch() -> str:
    from ..profiler.install import arch_from_platform
    from ..setup.engine import engine_facts
    return arch_from_platform(engine_facts()["architecture"])


def download_profiler(settings: Settings, version=None, source=None, archive=None, arch=None,
                      force=False, prove=True):
    from ..profiler.install import ProfilerRequest, install_profiler
    req = ProfilerRequest(
        version=version or settings.profiler.version,
        arch=arch or engine_arch(),
        source=source or ("archive" if archive else settings.profiler.source),
        archive=Path(archive).resolve() if archive else None,
        github_url_template=settings.profiler.github_url,
        maven_repo_url=settings.profiler.maven_repo,
        pins=settings.profiler.pins,
        force=force,
    )
    with ui.download_progress("async-profiler") as progress:
        res = install_profiler(req, settings.profiler.dir, progress=progress)
    if res.status == "already-installed":
        ui.ok(f"async-profiler {res.version} linux-{res.arch} already installed in {res.install_dir}; "
              "nothing to do (--force reinstalls)")
    else:
        ui.ok(f"installed async-profiler {res.version} linux-{res.arch} from {res.source} "
              f"({res.size:,} bytes, sha256 {res.sha256[:16]}..., {res.seconds:.1f}s) in {res.install_dir}")
    if prove:
        prove_profiler(settings)
    return res


def prove_profiler(settings: Settings) -> None:
    """asprof --version in a throwaway container of the stack's runtime image."""
    from ..setup.images import image_present
    from ..targets.compose import run_throwaway
    image = settings.base_image if image_present(settings.base_image) else settings.offline_base_image
    if not image_present(image):
        ui.warn(f"no {settings.base_image} or {settings.offline_base_image} image yet: run `inv base-images` "
                "to check asprof inside a container")
        return
    cp = settings.profiler.container_path
    out = run_throwaway(image, [f"{cp}/bin/asprof", "--version"], volumes=[(str(settings.profiler.dir), cp, "ro")])
    ui.ok(f"asprof in a {image} container reports: {out.strip()}")
