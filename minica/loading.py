"""Certificates, CSRs and CRLs from files made anywhere, read as far as they can be.

``load_all`` gives every object a file holds; ``Extensions`` reads an object's extensions
one by one, so that a broken one spoils only its own field of `minica show`.
cryptography parses all extensions of an object at once: one duplicate or garbled
extension makes every one unreadable, with a message that does not say which. When
that happens, each extension is read on its own from a copy of the object that holds it
alone — cryptography's own parser, on the real bytes. The copies' signatures no longer
match, which is harmless here: they are only read, never verified or trusted.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Union

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.utils import CryptographyDeprecationWarning

from .errors import MinicaError

Item = Union[x509.Certificate, x509.CertificateSigningRequest, x509.CertificateRevocationList]

# What cryptography raises for content it cannot read: malformed DER or values, unknown
# algorithms, the extension errors, and TypeError for a name attribute whose value has a
# type its OID does not allow (a BIT STRING that is no X500UniqueIdentifier).
UNREADABLE = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)

_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
_PEM_LOADERS: dict[str, Callable[[bytes], Item]] = {
    "CERTIFICATE": x509.load_pem_x509_certificate,
    "CERTIFICATE REQUEST": x509.load_pem_x509_csr,
    "NEW CERTIFICATE REQUEST": x509.load_pem_x509_csr,
    "X509 CRL": x509.load_pem_x509_crl,
}
_DER_LOADERS: tuple[Callable[[bytes], Item], ...] = (
    x509.load_der_x509_certificate,
    x509.load_der_x509_csr,
    x509.load_der_x509_crl,
)


def load_all(data: bytes, source: str) -> list[Item]:
    """Every certificate, CSR and CRL in ``data``, in order: its PEM blocks (other blocks,
    such as keys, are passed over), or the one DER object it is.

    Raises MinicaError naming ``source`` if it holds none, or if any block is corrupt.
    """
    blocks = list(_PEM_BEGIN.finditer(data))
    with quiet():
        if not blocks:
            return [_load_der(data, source)]
        known = [b for b in blocks if b.group(1).decode() in _PEM_LOADERS]
        if not known:
            label = blocks[0].group(1).decode()
            raise MinicaError(f"{source}: holds a PEM {label}, not a certificate, CSR or CRL")
        items = []
        for number, block in enumerate(blocks, 1):
            label = block.group(1).decode()
            if label not in _PEM_LOADERS:
                continue
            end = blocks[number].start() if number < len(blocks) else len(data)
            where = source if len(blocks) == 1 else f"{source}: PEM block {number}"
            items.append(_load_pem(_PEM_LOADERS[label], data[block.start() : end], where, label))
        return items


def _load_pem(load: Callable[[bytes], Item], block: bytes, where: str, label: str) -> Item:
    try:
        return load(block)
    except x509.InvalidVersion as error:
        raise MinicaError(f"{where}: {error}") from None
    except ValueError:
        raise MinicaError(f"{where}: a corrupt or truncated PEM {label}") from None


def _load_der(data: bytes, source: str) -> Item:
    problem = "not a certificate, CSR or CRL"
    for load in _DER_LOADERS:
        try:
            return load(data)
        except x509.InvalidVersion as error:  # the right structure, with a version none has
            problem = str(error)
        except ValueError:
            continue
    raise MinicaError(f"{source}: {problem}")


@contextmanager
def quiet() -> Iterator[None]:
    """Without cryptography's deprecation warnings, e.g. for a serial that is not positive:
    they speak of cryptography's future, and the description shows the serial as it is."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


# Extensions one at a time

_SEQUENCE = 0x30
_SET = 0x31
_OID = 0x06
_CERTIFICATE_EXTENSIONS = 0xA3  # TBSCertificate: extensions [3] EXPLICIT
_CRL_EXTENSIONS = 0xA0  # TBSCertList: crlExtensions [0] EXPLICIT
_CSR_ATTRIBUTES = 0xA0  # CertificationRequestInfo: attributes [0] IMPLICIT
_EXTENSION_REQUEST = bytes.fromhex("06092a864886f70d01090e")  # PKCS #9 extensionRequest


class Unreadable(Exception):
    """A field that cannot be read; the message says why."""


class Extensions:
    """An object's extensions by class: the value, None when absent, or Unreadable."""

    def __init__(self, item: Item) -> None:
        self._found: list[tuple[str, x509.Extension[Any] | Unreadable]] = []
        self._problem: Unreadable | None = None
        try:
            self._found = [(e.oid.dotted_string, e) for e in item.extensions]
        except UNREADABLE as error:
            try:
                self._found = [(oid, _alone(item, copy)) for oid, copy in _isolated(item)]
            except (ValueError, IndexError):  # not even the list of extensions can be read
                self._problem = Unreadable(f"the extensions cannot be read: {error}")

    def get(self, kind: type[x509.ExtensionType]) -> Any:
        """The value of the extension of class ``kind``, None if absent; Unreadable if it
        is garbled, appears more than once, or the extensions cannot be read at all."""
        extension = self._one(kind)
        return extension.value if extension else None

    def critical(self, kind: type[x509.ExtensionType]) -> bool:
        """Whether the extension of class ``kind`` is there and critical; Unreadable as get."""
        extension = self._one(kind)
        return bool(extension and extension.critical)

    def oids(self) -> list[str]:
        """The dotted OIDs of every extension, in order; Unreadable if there is no list."""
        if self._problem:
            raise self._problem
        return [oid for oid, _ in self._found]

    def _one(self, kind: type[x509.ExtensionType]) -> x509.Extension[Any] | None:
        if self._problem:
            raise self._problem
        found = [extension for oid, extension in self._found if oid == kind.oid.dotted_string]
        if len(found) > 1:  # RFC 5280 4.2: "MUST NOT include more than one instance"
            raise Unreadable(f"the extension appears {len(found)} times")
        if found and isinstance(found[0], Unreadable):
            raise found[0]
        return found[0] if found else None  # type: ignore[return-value]


_LOADERS: dict[type, Callable[[bytes], Item]] = {
    x509.Certificate: x509.load_der_x509_certificate,
    x509.CertificateSigningRequest: x509.load_der_x509_csr,
    x509.CertificateRevocationList: x509.load_der_x509_crl,
}


def _alone(item: Item, copy: bytes) -> x509.Extension[Any] | Unreadable:
    """The one extension of ``copy``, a DER copy of ``item`` holding only that extension."""
    load = next(loader for kind, loader in _LOADERS.items() if isinstance(item, kind))
    try:
        extensions = list(load(copy).extensions)
    except UNREADABLE as error:
        return Unreadable(str(error))
    return extensions[0] if len(extensions) == 1 else Unreadable("unreadable")


def _isolated(item: Item) -> list[tuple[str, bytes]]:
    """For each extension of ``item``: its dotted OID, and ``item``'s DER holding it alone.

    ValueError (or IndexError, for an element missing) if the DER is not laid out as
    RFC 5280 (certificates, CRLs) or RFC 2986 (CSRs) say.
    """
    from cryptography.hazmat.primitives.serialization import Encoding

    outer = _children(_contents(item.public_bytes(Encoding.DER)))
    info = _children(_contents(outer[0]))  # what is signed: TBSCertificate, ...
    alone: Callable[[bytes], bytes]
    if isinstance(item, x509.CertificateSigningRequest):
        index = _index_of(info, _CSR_ATTRIBUTES)
        requests = [
            attribute
            for attribute in _children(_contents(info[index]))
            if _contents(attribute).startswith(_EXTENSION_REQUEST)
        ]
        if not requests:
            raise ValueError("no extension request")
        values = _children(_contents(requests[0]))[1]  # the attribute's SET of values
        extensions = _children(_contents(_contents(values)))

        def alone(extension: bytes) -> bytes:  # other attributes are left out of the copy
            values = _encode(_SET, _encode(_SEQUENCE, extension))
            return _encode(_CSR_ATTRIBUTES, _encode(_SEQUENCE, _EXTENSION_REQUEST + values))

    else:
        tag = _CERTIFICATE_EXTENSIONS if isinstance(item, x509.Certificate) else _CRL_EXTENSIONS
        index = _index_of(info, tag)
        extensions = _children(_contents(_contents(info[index])))

        def alone(extension: bytes) -> bytes:
            return _encode(tag, _encode(_SEQUENCE, extension))

    copies = []
    for extension in extensions:
        signed = b"".join([*info[:index], alone(extension), *info[index + 1 :]])
        der = _encode(_SEQUENCE, _encode(_SEQUENCE, signed) + b"".join(outer[1:]))
        copies.append((_oid(extension), der))
    return copies


def _index_of(elements: list[bytes], tag: int) -> int:
    for index, element in enumerate(elements):
        if element[0] == tag:
            return index
    raise ValueError(f"no element with tag {tag:#x}")


def _oid(extension: bytes) -> str:
    """The dotted OID of an Extension's DER: its first element."""
    first = _children(_contents(extension))[0]
    body = _contents(first)
    if first[0] != _OID or not body or body[-1] & 0x80:
        raise ValueError("an extension without an OID")
    arcs, value = [], 0
    for byte in body:  # base 128; the high bit is set on every byte but an arc's last
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    top = min(arcs[0] // 40, 2)  # X.690 8.19.4: the first two arcs share one number
    return ".".join(map(str, [top, arcs[0] - 40 * top, *arcs[1:]]))


def _contents(element: bytes) -> bytes:
    """The contents of the one DER element that is ``element``."""
    body, end = _read(element, 0)
    if end != len(element):
        raise ValueError("trailing bytes after a DER element")
    return body


def _children(body: bytes) -> list[bytes]:
    """The whole elements (tag, length and contents) that ``body`` is made of."""
    elements, offset = [], 0
    while offset < len(body):
        _, end = _read(body, offset)
        elements.append(body[offset:end])
        offset = end
    return elements


def _read(data: bytes, offset: int) -> tuple[bytes, int]:
    """The contents of the DER element at ``offset``, and where the element ends."""
    if offset + 2 > len(data):
        raise ValueError("a truncated DER element")
    length = data[offset + 1]
    offset += 2
    if length & 0x80:  # long form: the next (length & 0x7F) bytes hold the length
        count = length & 0x7F
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    if offset + length > len(data):
        raise ValueError("a DER element longer than what holds it")
    return data[offset : offset + length], offset + length


def _encode(tag: int, body: bytes) -> bytes:
    """A DER element: ``tag``, the length of ``body`` (short or long form), ``body``."""
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body
