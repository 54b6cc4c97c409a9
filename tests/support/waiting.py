"""Polling for what a running process will do soon."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(what: str, check: Callable[[], T], seconds: float, every_s: float = 0.5) -> T:
    """The first truthy result of `check()`; fails naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(every_s)
    raise AssertionError(f"not within {seconds} s: {what}")
