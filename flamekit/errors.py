"""Every user-facing failure of flamekit is a FlamekitError.

The invoke layer (tasks.py) turns these into one line on stderr and a non-zero
exit; anything else escaping is a bug and keeps its traceback.
"""
from __future__ import annotations


class FlamekitError(Exception):
    """A failure the user can act on: ``message`` says what is wrong, ``hint`` what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}: {self.hint}"
        return self.message


class ConfigError(FlamekitError):
    """Configuration that cannot work (unknown service, bad event, bad path...)."""


class EngineError(FlamekitError):
    """No usable Docker engine or compose plugin."""


class ImageError(FlamekitError):
    """Base images could not be pulled or built."""


class StackError(FlamekitError):
    """The compose stack failed to start, become healthy or answer."""


class ProfilerError(FlamekitError):
    """async-profiler missing, unverifiable, or failed to install."""


class ChecksumError(ProfilerError):
    """A download did not match its expected digest."""


class UnsafeArchiveError(ProfilerError):
    """An archive member would escape the install directory or is not a plain file."""


class LoadError(FlamekitError):
    """k6 missing, failed, or produced no usable summary."""


class CaptureError(FlamekitError):
    """The profiler could not attach, produced nothing, or no JVM was found."""


class ReportError(FlamekitError):
    """A run directory is missing or unreadable."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived. A KeyboardInterrupt, not a FlamekitError, so no
    ``except FlamekitError`` or ``except Exception`` can swallow it as one failed step:
    the whole command stops, after its cleanup, with exit code 130."""

    exit_code = 130

    def __init__(self, signame: str = "SIGINT"):
        super().__init__(f"interrupted by {signame}")
        self.signame = signame
