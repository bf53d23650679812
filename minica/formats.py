"""How minica writes serial numbers and times, everywhere: files, registry, JSON, text."""

from __future__ import annotations

import re
import sys
import unicodedata
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


if sys.version_info >= (3, 11):  # reads the Z itself, in one C call: a CRL reads 100,000
    parse_iso = datetime.fromisoformat  # type: ignore[assignment]


def to_second(moment: datetime) -> datetime:
    """``moment`` without its fraction of a second: what certificates and the registry keep."""
    return moment.replace(microsecond=0)


# Text for terminals: what a certificate, a CSR or the registry holds is shown escaped.
#
# Unicode categories that must not reach a terminal raw: controls (Cc: C0, DEL, C1 — ESC
# starts terminal escape sequences, CR and LF forge lines), format characters (Cf: bidi
# embeddings, overrides and isolates, zero-width ones, soft hyphen, tags — they reorder
# or hide text), surrogates (Cs: unprintable in UTF-8), private-use and unassigned code
# points (Co, Cn: anything a font or a later Unicode makes of them), and the line and
# paragraph separators (Zl, Zp).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: every unsafe character (see above) as a
    Python-style escape (``\\x1b``, ``\\u202e``, ``\\U000e0041``), every other one unchanged.

    A backslash is doubled where it could be read as the start of an escape: before
    ``x``, ``u``, ``U``, another backslash or an escaped character. So the output reads
    back unambiguously (``\\\\`` is a backslash, ``\\x1b`` an ESC, a lone ``\\`` itself), and
    the RFC 4514 escapes of a subject stay as RFC 4514 (and ``openssl -nameopt RFC2253``)
    write them: ``O=DigiCert\\, Inc.``.
    """
    if text.isprintable() and not _ESCAPE_LIKE.search(text):  # the common case, in C
        return text
    shown = []
    for index, character in enumerate(text):
        if character == "\\":
            after = text[index + 1 : index + 2]
            shown.append("\\\\" if after and (after in "\\xuU" or _unsafe(after)) else "\\")
        elif _unsafe(character):
            shown.append(_escape(character))
        else:
            shown.append(character)
    return "".join(shown)


_ESCAPE_LIKE = re.compile(r"\\[\\xuU]")


def _unsafe(character: str) -> bool:
    return unicodedata.category(character) in _UNSAFE_CATEGORIES


def _escape(character: str) -> str:
    code = ord(character)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


_NOT_ASCII = re.compile(r"[^\x00-\x7e]+")  # DEL (0x7f) included: JSON encoders leave it raw


def terminal_safe_json(document: str) -> str:
    """A JSON text with every character ``printable`` would escape written as a JSON
    ``\\u`` escape: the same JSON value, safe on a terminal, other letters still UTF-8.

    For JSON written without ``ensure_ascii`` (json.dumps escapes C0 controls only, SQLite's
    json functions likewise), which would pass C1 controls and bidi overrides through raw.
    """
    if document.isascii() and "\x7f" not in document:
        return document
    return _NOT_ASCII.sub(lambda match: "".join(map(_json_escape, match.group())), document)


def _json_escape(character: str) -> str:
    if not _unsafe(character):
        return character
    code = ord(character)
    if code > 0xFFFF:  # JSON escapes astral characters as a UTF-16 surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"
