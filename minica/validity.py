"""Lifetimes: how long a certificate lives, nested within its issuer's."""

from __future__ import annotations

from datetime import datetime, timedelta

from .errors import PolicyError

# Certificates start a minute early so that a client whose clock lags a little
# (common between lab machines) does not see a brand-new certificate as not yet valid.
BACKDATE = timedelta(minutes=1)

Window = tuple[datetime, datetime]  # (not_before, not_after), aware UTC


def lifetime(
    now: datetime, days: int, *, explicit: bool, issuer: Window | None
) -> tuple[datetime, datetime, list[str]]:
    """(not_before, not_after, warnings) for ``days`` from ``now``, nested in the issuer's
    validity ``issuer``."""
    if days <= 0:
        raise PolicyError(f"a lifetime of {days} days is not possible; give 1 or more")
    try:
        not_after = now + timedelta(days=days)
    except OverflowError:  # datetime ends with the year 9999
        raise PolicyError(f"a lifetime of {days} days ends after the year 9999") from None
    not_before = now - BACKDATE
    if issuer is None:
        return not_before, not_after, []
    issuer_start, issuer_end = issuer
    if now >= issuer_end:
        raise PolicyError(
            f"the CA expired on {issuer_end:%Y-%m-%d %H:%M} UTC: it signs nothing more",
            hint="renew the CA, or make a new one",
            code="ca-expired",
        )
    not_before = max(not_before, issuer_start)
    if not_after <= not_before:
        raise PolicyError(
            f"a lifetime of {days} days from {now:%Y-%m-%d %H:%M} UTC ends before the issuer "
            f"starts ({issuer_start:%Y-%m-%d %H:%M} UTC)"
        )
    if not_after <= issuer_end:
        return not_before, not_after, []
    if explicit:
        raise PolicyError(
            f"a lifetime of {days} days would end after the issuer's own expiry "
            f"({issuer_end:%Y-%m-%d %H:%M} UTC)",
            hint="ask for fewer days, or renew the CA first",
        )
    warning = f"lifetime cut to the issuer's own expiry ({issuer_end:%Y-%m-%d %H:%M} UTC)"
    return not_before, issuer_end, [warning]


def explicit_window(window: Window, issuer: Window) -> tuple[datetime, datetime, list[str]]:
    """``window`` as asked for: it may start before the issuer, never end after it."""
    not_before, not_after = window
    if not_after <= not_before:
        raise PolicyError("not_after must come after not_before")
    issuer_end = issuer[1]
    if not_after > issuer_end:
        raise PolicyError(
            f"not_after {not_after:%Y-%m-%d %H:%M} UTC is after the issuer's own expiry "
            f"({issuer_end:%Y-%m-%d %H:%M} UTC)"
        )
    return not_before, not_after, []
