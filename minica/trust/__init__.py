"""`minica trust`: a CA's root in the machine's trust stores — the system's, NSS's
(Chromium, Firefox) and Java's — put in, taken out, and checked by each store's own
verifier. A root without name constraints is refused unless the caller allows it: once
trusted, it could vouch for any site.

Each store module (system.py, nss.py, java.py) offers ``install``, ``uninstall`` and
``status`` for one root and answers with ``Outcome``s, one per place it looked at; it
raises nothing for a place that failed, so that every other place is still done.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InputError, NotFoundError, PolicyError
from .base import Outcome, Root, Store
from .java import JavaStore
from .nss import NssStore
from .system import SystemStore

__all__ = ["STORES", "Outcome", "Root", "Store", "check_constrained", "install", "status",
           "stores", "uninstall"]  # fmt: skip
STORES = ("system", "nss", "java")


def stores(names: Sequence[str]) -> list[Store]:
    """The stores named (system, nss, java), or every one found on this machine."""
    made: dict[str, Store] = {"system": SystemStore(), "nss": NssStore(), "java": JavaStore()}
    unknown = [name for name in names if name not in made]
    if unknown:
        raise InputError(f"no trust store {unknown[0]!r} (known: {', '.join(STORES)})")
    if names:
        return [made[name] for name in dict.fromkeys(names)]
    found = [store for store in made.values() if store.found()]
    if not found:
        raise NotFoundError(
            "no trust store found on this machine: no system store minica knows (Debian, "
            "Ubuntu, Fedora, RHEL, SUSE, Arch), no certutil or NSS database, no Java",
            code="no-trust-store",
        )
    return found


def check_constrained(root: Root, allow_unconstrained: bool) -> None:
    """PolicyError for a root without name constraints, unless allowed."""
    if not root.constraints and not allow_unconstrained:
        raise PolicyError(
            f"the root {root.common_name!r} has no name constraints: once trusted, it could "
            "vouch for any site on the internet, and so could anyone holding its key",
            code="unconstrained-root",
        )


def install(root: Root, chosen: list[Store], allow_unconstrained: bool) -> list[Outcome]:
    check_constrained(root, allow_unconstrained)
    return [outcome for store in chosen for outcome in store.install(root)]


def uninstall(root: Root, chosen: list[Store]) -> list[Outcome]:
    return [outcome for store in chosen for outcome in store.uninstall(root)]


def status(root: Root, chosen: list[Store]) -> list[Outcome]:
    return [outcome for store in chosen for outcome in store.status(root)]
