"""A tiny DER editor for tests: parse into a tree, change it, encode it again.

Enough to build broken certificates, CSRs and CRLs from real ones (a duplicate or garbled
extension, an unknown algorithm, a version that does not exist) with every length right,
so that the breakage reaches the part of the parser a test aims at.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

SEQUENCE = 0x30
OCTET_STRING = 0x04
OID = 0x06
INTEGER = 0x02


@dataclass
class Node:
    """One DER element: its tag, and either its children (constructed, or an OCTET STRING
    that holds DER, as extension values do) or its contents."""

    tag: int
    content: bytes = b""
    children: list[Node] | None = None
    wrapped: bool = field(default=False)  # an OCTET STRING whose contents were parsed

    def encode(self) -> bytes:
        body = (
            b"".join(child.encode() for child in self.children)
            if self.children is not None
            else self.content
        )
        return bytes([self.tag]) + length(len(body)) + body

    def child(self, index: int) -> Node:
        assert self.children is not None, "a primitive element has no children"
        return self.children[index]

    def walk(self) -> Iterator[tuple[Node | None, Node]]:
        """Every node below and including this one, with its parent, depth first."""
        stack: list[tuple[Node | None, Node]] = [(None, self)]
        while stack:
            parent, node = stack.pop(0)
            yield parent, node
            stack[0:0] = [(node, child) for child in node.children or []]


def length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def parse(data: bytes) -> Node:
    """The tree of one DER element; ValueError if ``data`` is not exactly one."""
    node, end = _parse_at(data, 0)
    if end != len(data):
        raise ValueError("trailing bytes")
    return node


def _parse_at(data: bytes, offset: int) -> tuple[Node, int]:
    if offset + 2 > len(data):
        raise ValueError("truncated")
    tag, size = data[offset], data[offset + 1]
    offset += 2
    if size & 0x80:
        count = size & 0x7F
        size = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    end = offset + size
    if end > len(data):
        raise ValueError("truncated")
    body = data[offset:end]
    if tag & 0x20:  # constructed
        return Node(tag, children=_parse_all(body)), end
    if tag == OCTET_STRING:
        try:
            return Node(tag, children=[parse(body)], wrapped=True), end
        except ValueError:
            pass
    return Node(tag, content=body), end


def _parse_all(body: bytes) -> list[Node]:
    children, offset = [], 0
    while offset < len(body):
        child, offset = _parse_at(body, offset)
        children.append(child)
    return children


def oid(dotted: str) -> bytes:
    """The contents of an OBJECT IDENTIFIER (X.690 8.19)."""
    first, second, *rest = map(int, dotted.split("."))
    out = bytearray()
    for arc in [40 * first + second, *rest]:
        chunk = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            chunk.append(0x80 | (arc & 0x7F))
        out += bytes(reversed(chunk))
    return bytes(out)


def extension(tree: Node, dotted: str) -> Node:
    """The Extension SEQUENCE whose extnID is ``dotted`` (the first one found)."""
    wanted = oid(dotted)
    for _, node in tree.walk():
        first = node.children[0] if node.children else None
        if node.tag == SEQUENCE and first and first.tag == OID and first.content == wanted:
            return node
    raise LookupError(dotted)


def extension_value(tree: Node, dotted: str) -> Node:
    """The OCTET STRING holding the value of extension ``dotted``."""
    children = extension(tree, dotted).children or []
    return children[-1]


def duplicate_extension(der: bytes, dotted: str) -> bytes:
    """``der`` with extension ``dotted`` twice, side by side."""
    tree = parse(der)
    wanted = extension(tree, dotted)
    for parent, node in tree.walk():
        if node is wanted and parent is not None and parent.children is not None:
            index = parent.children.index(node)
            parent.children.insert(index, parse(node.encode()))
            return tree.encode()
    raise LookupError(dotted)


def set_extension_value(der: bytes, dotted: str, value: bytes) -> bytes:
    """``der`` with the value of extension ``dotted`` replaced by the bytes ``value``."""
    tree = parse(der)
    holder = extension_value(tree, dotted)
    holder.children, holder.content = None, value
    return tree.encode()


def replace_oid(der: bytes, old: str, new: str) -> bytes:
    """``der`` with every OBJECT IDENTIFIER ``old`` made ``new``."""
    tree = parse(der)
    for _, node in tree.walk():
        if node.tag == OID and node.content == oid(old):
            node.content = oid(new)
    return tree.encode()


def set_first_integer(der: bytes, value: int, within: int = 0) -> bytes:
    """``der`` with the first INTEGER inside its ``within``-th child set to ``value``
    (small values only): e.g. the version of a CSR."""
    tree = parse(der)
    start = tree.child(within)
    for _, node in start.walk():
        if node.tag == INTEGER:
            node.content = bytes([value])
            return tree.encode()
    raise LookupError("no INTEGER")
