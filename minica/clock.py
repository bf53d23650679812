"""The one clock: every "now" in the core comes from a Clock, so that tests and
simulations pin time instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

Clock = Callable[[], datetime]  # returns an aware UTC datetime


def system_clock() -> datetime:
    """The machine's time, in UTC."""
    return datetime.now(timezone.utc)


class ManualClock:
    """A clock that stands still until it is moved."""

    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("a clock tells aware datetimes: give one with a tzinfo")
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta
