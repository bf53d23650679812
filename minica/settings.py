"""The CA's settings file, ca.yaml: defaults and the URLs put into issued certificates."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from .errors import InputError, MinicaError
from .issuer import Urls
from .keys import DEFAULT_KEY_TYPE, KEY_TYPES
from .names import parse_uri

_TEMPLATE = """\
# minica CA settings. Edit freely: every minica command reads this file.

# Default key type for `minica issue`.
key_type: {key_type}

# URLs written into every certificate this CA issues; leave empty to leave them out.
# CRL Distribution Point: where the output of `minica crl` is published.
crl_url: {crl_url}
# Authority Information Access: the OCSP responder.
ocsp_url: {ocsp_url}
# Authority Information Access: where ca.crt is published.
issuer_url: {issuer_url}
"""


@dataclass(frozen=True)
class Settings:
    key_type: str = DEFAULT_KEY_TYPE
    urls: Urls = Urls()

    def to_yaml(self) -> str:
        return _TEMPLATE.format(
            key_type=self.key_type,
            crl_url=self.urls.crl or "",
            ocsp_url=self.urls.ocsp or "",
            issuer_url=self.urls.issuer or "",
        )

    @classmethod
    def from_yaml(cls, text: str, source: str) -> Settings:
        """Settings from ca.yaml text; InputError naming the file and the bad key."""
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            raise InputError(f"{source}: not valid YAML") from None
        if not isinstance(raw, dict):
            raise InputError(f"{source}: must be a mapping of settings")
        known = ("key_type", "crl_url", "ocsp_url", "issuer_url")
        unknown = [key for key in raw if key not in known]
        if unknown:
            raise InputError(f"{source}: unknown key {unknown[0]!r} (known: {', '.join(known)})")
        key_type = raw.get("key_type") or DEFAULT_KEY_TYPE
        if key_type not in KEY_TYPES:
            raise InputError(f"{source}: key_type: unknown {key_type!r} ({', '.join(KEY_TYPES)})")
        try:
            urls = Urls(*(_url(raw.get(key)) for key in ("crl_url", "ocsp_url", "issuer_url")))
        except MinicaError as error:
            raise InputError(f"{source}: {error}") from None
        return cls(key_type, urls)


def _url(value: object) -> str | None:
    return parse_uri(str(value)) if value else None
