"""Waiting on a condition, never for a fixed time: a test polls until what it needs has happened, and fails
only when it never happens within a generous deadline (a busy machine is slow, not wrong)."""
from __future__ import annotations

import time

DEADLINE = 120.0  # seconds: far more than any condition needs on a quiet machine


def until(predicate, timeout: float = DEADLINE, every: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True
