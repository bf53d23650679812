"""Lifetimes: how long a certificate lives, nested within its issuer's."""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509

from .errors import PolicyError

# Certificates start a minute early so that a client whose clock lags a little
# (common between lab machines) does not see a brand-new certificate as not yet valid.
BACKDATE = timedelta(minutes=1)


def lifetime(
    now: datetime, days: int, *, explicit: bool, issuer: x509.Certificate | None
) -> tuple[datetime, datetime, list[str]]:
    """(not_before, not_after, warnings) for ``days`` from ``now``, nested in the issuer's."""
    if days <= 0:
        raise PolicyError(f"a lifetime of {days} days is not possible; give 1 or more")
    try:
        not_after = now + timedelta(days=days)
    except OverflowError:  # datetime ends with the year 9999
        raise PolicyError(f"a lifetime of {days} days ends after the year 9999") from None
    not_before = now - BACKDATE
    if issuer is None:
        return not_before, not_after, []
    not_before = max(not_before, issuer.not_valid_before_utc)
    if not_after <= not_before:
        raise PolicyError(
            f"a lifetime of {days} days from {now:%Y-%m-%d %H:%M} UTC ends before the issuer "
            f"starts ({issuer.not_valid_before_utc:%Y-%m-%d %H:%M} UTC)"
        )
    issuer_end = issuer.not_valid_after_utc
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


def explicit_window(
    window: tuple[datetime, datetime], issuer: x509.Certificate
) -> tuple[datetime, datetime, list[str]]:
    not_before, not_after = window
    if not_after <= not_before:
        raise PolicyError("not_after must come after not_before")
    if not_after > issuer.not_valid_after_utc:
        raise PolicyError(
            f"not_after {not_after:%Y-%m-%d %H:%M} UTC is after the issuer's own expiry "
            f"({issuer.not_valid_after_utc:%Y-%m-%d %H:%M} UTC)"
        )
    return not_before, not_after, []
