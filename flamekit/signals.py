"""SIGINT and SIGTERM as an exception, and cleanup that a second signal cannot cut short.

``docker exec`` does not forward signals, and k6 runs in its own session, so an interrupted
harness must stop the profilers and k6 itself. Inside ``SignalGuard`` the first signal raises
:class:`Interrupted` in the main thread (every ``finally`` runs); inside ``guard.shielded()``
(the cleanup) signals are only recorded, and the interrupt is raised when the shield ends.
The handlers stay installed until the guard exits, after the cleanup.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import Iterator

from .errors import Interrupted

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalGuard:
    def __init__(self) -> None:
        self.received: str | None = None
        self._shield = 0
        self._raised = False
        self._old: dict = {}

    def _handler(self, signum, _frame) -> None:
        name = signal.Signals(signum).name
        if self.received is None:
            self.received = name
            if not self._shield:
                self._raised = True
                raise Interrupted(name)
        log.warning("%s received: cleaning up first (profilers, k6), then stopping", name)

    def __enter__(self) -> "SignalGuard":
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handler) for s in SIGNALS}
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old = {}
        if exc_type is None and self.received and not self._raised:
            self._raised = True
            raise Interrupted(self.received)

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        """Run cleanup to its end whatever signals arrive; raise the interrupt afterwards."""
        self._shield += 1
        try:
            yield
        finally:
            self._shield -= 1
        if not self._shield and self.received and not self._raised:
            self._raised = True
            raise Interrupted(self.received)
