"""The profiles one CA sees, parsed once and parsed again when their files change.

A long-lived process (a service, a test session) must see a profile that was edited,
added or removed, without paying to parse YAML on every signature: each answer is kept
with a stamp of the files it could depend on, and used while the stamp holds.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from . import profiles
from .profiles import Profile

# (name, mtime in ns, size, inode) of each file watched; -1s for one that is not there.
Stamp = tuple[tuple[str, int, int, int], ...]


class Catalog:
    """Profile lookup for one CA: its ``folder`` of profiles (or None), then the built-ins.

    The built-in profiles ship with minica and are read once; the CA's folder, and a
    profile given by path, are watched.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._found: dict[str, tuple[Stamp, Profile]] = {}

    def find(self, name: str) -> Profile:
        """The profile ``name`` (see profiles.find); ProfileError if there is none."""
        stamp = self._stamp(name)
        with self._lock:
            kept = self._found.get(name)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        profile = profiles.find(name, self.folder)
        with self._lock:
            self._found[name] = (stamp, profile)
        return profile

    def available(self) -> list[Profile]:
        """Every profile this CA can use, by name (read afresh: listings are rare)."""
        return profiles.available(self.folder)

    def _stamp(self, name: str) -> Stamp:
        """What ``name``'s profile may depend on: the CA's profile files (any of them may be
        extended), and the file itself when it is given by path. Taken before the files
        are read, so an edit made while they are read shows as a change next time."""
        watched = [self.folder] if self.folder is not None else []
        if profiles.is_path(name):
            watched.append(Path(name))
        if not watched:
            return ()
        return tuple(entry for path in watched for entry in _stat_all(path))


def _stat_all(path: Path) -> list[tuple[str, int, int, int]]:
    """The stamp of a file, or of a folder and every YAML file in it."""
    try:
        if not path.is_dir():
            return [_entry(str(path), os.stat(path))]
        entries = [_entry(str(path), os.stat(path))]
        with os.scandir(path) as files:
            for file in files:
                if file.name.endswith(".yaml"):
                    entries.append(_entry(file.name, file.stat()))
        return sorted(entries)
    except OSError:
        return [(str(path), -1, -1, -1)]  # missing: a stamp of its own


def _entry(name: str, status: os.stat_result) -> tuple[str, int, int, int]:
    return (name, status.st_mtime_ns, status.st_size, status.st_ino)
