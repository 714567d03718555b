"""async-profiler distributions: fetch, verify and install them.

``from flamekit import profiler as fkprofiler; fkprofiler.install_profiler(...)``.
Modules: ``base`` (types, defaults), ``http`` (session, downloads),
``sources`` (github, maven, archive), ``archive`` (safe unpacking),
``aploader`` (the ap-loader jar), ``install`` (entry points, atomic swap-in).
"""
from __future__ import annotations

from .base import (ARCHES, DEFAULT_GITHUB_URL_TEMPLATE, DEFAULT_MAVEN_REPO_URL, DEFAULT_VERSION, MANIFEST_NAME,
                   REQUIRED_FILES, SOURCES, DownloadError, InstallResult, Progress, ProfilerRequest,
                   arch_from_platform, pin_key)
from .install import install_profiler, installed_profiler, require_profiler
from .sources import pick_ap_loader_version

__all__ = [
    "ARCHES", "DEFAULT_GITHUB_URL_TEMPLATE", "DEFAULT_MAVEN_REPO_URL", "DEFAULT_VERSION", "MANIFEST_NAME",
    "REQUIRED_FILES", "SOURCES", "DownloadError", "InstallResult", "Progress", "ProfilerRequest",
    "arch_from_platform", "install_profiler", "installed_profiler", "pick_ap_loader_version", "pin_key",
    "require_profiler",
]
