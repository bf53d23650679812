"""How minica writes serial numbers and times, everywhere: files, registry, JSON, text."""

from __future__ import annotations

from datetime import datetime, timezone


def serial_hex(serial: int) -> str:
    """A serial as minica shows it: lowercase hex, no colons, no leading zeros."""
    return format(serial, "x")


def parse_serial(text: str) -> str:
    """A typed serial (any case, leading zeros, colons) in minica's form; ValueError if not hex."""
    digits = text.strip().replace(":", "").lower().removeprefix("0x")
    serial = int(digits, 16)  # ValueError for anything but hex digits
    if not 0 < serial < 1 << 160:  # RFC 5280: positive, at most 20 octets
        raise ValueError(text)
    return serial_hex(serial)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, as the registry and the JSON forms write times."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """A time as ``iso`` writes it, back as an aware UTC datetime."""
    return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=timezone.utc)


def to_second(moment: datetime) -> datetime:
    """``moment`` without its fraction of a second: what certificates and the registry keep."""
    return moment.replace(microsecond=0)
