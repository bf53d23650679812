"""A certificate with its key and the intermediates above it — as PEM, as files, or
loaded into an ssl context: what a TLS peer presents."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .errors import InputError
from .keys import PrivateKey, private_key_pem

if TYPE_CHECKING:
    import ssl


@dataclass(frozen=True)
class CredentialFiles:
    certificate: Path
    private_key: Path
    chain: Path  # the certificate followed by the intermediates


@dataclass(frozen=True)
class Credential:
    """A certificate, its private key and the intermediates between it and the root."""

    certificate: x509.Certificate
    private_key: PrivateKey
    intermediates: tuple[x509.Certificate, ...] = ()

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(Encoding.PEM)

    @property
    def private_key_pem(self) -> bytes:
        return private_key_pem(self.private_key)

    @property
    def chain_pem(self) -> bytes:
        """The certificate then the intermediates: what a TLS peer presents."""
        return self.certificate_pem + b"".join(
            c.public_bytes(Encoding.PEM) for c in self.intermediates
        )

    def write(self, directory: Path | str, name: str = "cert") -> CredentialFiles:
        """Write NAME.crt, NAME.key (mode 0600) and NAME-chain.crt into ``directory``.

        InputError if there is no such folder; ConflictError if NAME.key exists (a key is
        never overwritten), and then nothing is written."""
        from .atomic import write_atomic, write_new

        folder = Path(directory)
        if not folder.is_dir():
            raise InputError(f"cannot write the credential into {folder}: there is no such folder")
        files = CredentialFiles(
            folder / f"{name}.crt", folder / f"{name}.key", folder / f"{name}-chain.crt"
        )
        write_new(files.private_key, self.private_key_pem, mode=0o600)
        write_atomic(files.certificate, self.certificate_pem)
        write_atomic(files.chain, self.chain_pem)
        return files

    def configure(self, context: ssl.SSLContext) -> None:
        """Make ``context`` present this certificate (with its chain) and key (again, for
        a renewal: new handshakes get the new certificate). InputError if they do not go
        together."""
        import ssl  # here, not at import: the CLI never needs it

        with tempfile.TemporaryDirectory() as folder:  # ssl loads keys from files only
            files = self.write(folder)
            try:
                context.load_cert_chain(files.chain, files.private_key)
            except ssl.SSLError as error:
                reason = error.reason or str(error)
                raise InputError(f"the certificate and key cannot serve TLS: {reason}") from None
