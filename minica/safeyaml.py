"""YAML that people edit (profiles, ca.yaml), read within bounds: plain data only, and
files read only when they are regular files of a sane size."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from .names import quote

# The built-in profiles are under 1 KiB; a file 64 times that is not a profile, and YAML
# parsing and messages stay small below it. The same bound holds for ca.yaml.
MAX_BYTES = 64 * 1024
# A profile nests three levels deep (names: allowed: [...]); this is far more.
MAX_DEPTH = 16


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML that refuses duplicate keys: a repeated key must not silently win."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # unhashable: the base class refuses it in its own words
                continue
            if repeated:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {quote(key)}", node.start_mark
                )
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def load(text: str) -> Any:
    """The one YAML document in ``text``, read safely and within bounds: plain data only
    (no tags such as !!python/object), no repeated keys, no anchors or aliases (a few
    hundred bytes of aliases expand to gigabytes), at most 16 levels deep.

    Raises ValueError with a one-line reason.
    """
    _check_shape(text)
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as error:
        raise ValueError(_yaml_problem(error)) from None
    except (ValueError, OverflowError):  # e.g. an integer of thousands of digits
        raise ValueError("a number or date is out of range") from None


def _check_shape(text: str) -> None:
    """Refuse anchors, aliases and deep nesting from the parser's events, before anything
    is built from them (the events of a 64 KiB text are few and small)."""
    parser = _StrictLoader(text)
    depth = 0
    try:
        while parser.check_event():
            event = parser.get_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise ValueError("anchors and aliases (&name, *name) are not allowed")
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError as error:
        raise ValueError(_yaml_problem(error)) from None
    finally:
        parser.dispose()


def _yaml_problem(error: yaml.YAMLError) -> str:
    """What the parser says, on one line, without the text it quotes (the marks)."""
    said = [getattr(error, part, None) for part in ("context", "problem")]
    return " ".join(" ".join(filter(None, said)).split()) or "unreadable"


_FILE_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}
# A FIFO must not block the open; a terminal must not become ours.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)


def read_regular_file(path: Path) -> bytes:
    """The bytes of the regular file at ``path`` (a symlink to one will do), at most
    MAX_BYTES. Anything else is refused before it is opened: reading a FIFO would hang,
    /dev/zero would never end, and opening some devices acts on them.

    Raises ValueError saying what the file is instead, or OSError if it cannot be read.
    """
    kind = _FILE_KINDS.get(stat.S_IFMT(path.stat().st_mode))
    if kind is None:
        descriptor = os.open(path, _OPEN_FLAGS)
        with open(descriptor, "rb") as file:  # checked again: it may have been swapped
            kind = _FILE_KINDS.get(stat.S_IFMT(os.fstat(descriptor).st_mode))
            data = b"" if kind else file.read(MAX_BYTES + 1)
    if kind is not None:
        raise ValueError(f"is {kind}, not a regular file")
    if len(data) > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES // 1024} KiB")
    return data
