"""Ctrl-C as a value: the first press asks long waits to stop (they wake at once, since their poll
sleep is `token.wait()`), the second press interrupts immediately."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from orchestrator.errors import Cancelled


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        self._event.set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True as soon as cancellation was asked for."""
        return self._event.wait(seconds)

    def raise_if_cancelled(self, message: str, hint: str | None = None) -> None:
        if self.cancelled:
            raise Cancelled(message, hint=hint)


@contextmanager
def first_interrupt_cancels(token: CancelToken) -> Iterator[CancelToken]:
    """While inside, the first SIGINT cancels `token`; a second one raises KeyboardInterrupt (exit 130)."""
    if threading.current_thread() is not threading.main_thread():
        yield token
        return

    def on_interrupt(signum: int, frame: object) -> None:
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield token
    finally:
        signal.signal(signal.SIGINT, previous)
