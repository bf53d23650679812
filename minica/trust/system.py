"""The operating system's trust store (what OpenSSL's default verify paths, curl, Python
and most programs read): the root as a file in the distribution's anchor folder, then
its refresh command. Debian and Ubuntu, Fedora and RHEL, SUSE and Arch, told apart by
/etc/os-release. Checked with `openssl verify` and the default paths, as they are read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .base import Outcome, Root, run, said
from .java import CannotAsk, aliases, cacerts, remove, trusted_by_java

OS_RELEASE = Path("/etc/os-release")
NEEDS_ROOT = "the system store belongs to root: run it with sudo"
DEBIAN_CERTS = Path("/etc/ssl/certs")  # where update-ca-certificates links the anchors


@dataclass(frozen=True)
class Family:
    """A family of distributions: where anchors go, as what, and how they are put to use."""

    name: str
    anchors: Path
    suffix: str
    refresh: tuple[str, ...]


FAMILIES = {
    "debian": Family("debian", Path("/usr/local/share/ca-certificates"), ".crt",
                     ("update-ca-certificates",)),
    "fedora": Family("fedora", Path("/etc/pki/ca-trust/source/anchors"), ".pem",
                     ("update-ca-trust", "extract")),
    "suse": Family("suse", Path("/etc/pki/trust/anchors"), ".pem", ("update-ca-certificates",)),
    "arch": Family("arch", Path("/etc/ca-certificates/trust-source/anchors"), ".crt",
                   ("update-ca-trust", "extract")),
}  # fmt: skip
# os-release IDs (ID and ID_LIKE) by family
IDS = {
    "debian": "debian", "ubuntu": "debian", "fedora": "fedora", "rhel": "fedora",
    "centos": "fedora", "rocky": "fedora", "almalinux": "fedora", "suse": "suse",
    "opensuse": "suse", "sles": "suse", "arch": "arch", "manjaro": "arch",
}  # fmt: skip


def family() -> Family | None:
    """This machine's family, from /etc/os-release (None: unknown, or not Linux)."""
    try:
        text = OS_RELEASE.read_text()
    except OSError:
        return None
    fields = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )
    ids = [fields.get("ID", ""), *fields.get("ID_LIKE", "").split()]
    for value in ids:
        name = IDS.get(value.strip().strip('"').split("-")[0])
        if name:
            return FAMILIES[name]
    return None


class SystemStore:
    name = "system"

    def __init__(self) -> None:
        self.family = family()

    def found(self) -> bool:
        return self.family is not None

    def _file(self, root: Root) -> Path:
        assert self.family is not None
        return self.family.anchors / f"{root.slug}{self.family.suffix}"

    def install(self, root: Root) -> list[Outcome]:
        if self.family is None:
            return [self._unknown()]
        anchor = self._file(root)
        if anchor.exists() and anchor.read_bytes() == root.pem:
            return [self._outcome(anchor, "already installed", root)]
        try:
            anchor.parent.mkdir(parents=True, exist_ok=True)
            _write(anchor, root.pem)
        except PermissionError:
            return [
                Outcome(self.name, str(anchor), "failed", False, "permission denied", NEEDS_ROOT)
            ]
        except OSError as error:
            return [Outcome(self.name, str(anchor), "failed", False, str(error.strerror))]
        refreshed = self._refresh(anchor)
        return [refreshed or self._outcome(anchor, "installed", root)]

    def uninstall(self, root: Root) -> list[Outcome]:
        if self.family is None:
            return [self._unknown()]
        anchor = self._file(root)
        if not anchor.exists():
            return [self._outcome(anchor, "not installed", root)]
        try:
            anchor.unlink()
        except PermissionError:
            return [
                Outcome(self.name, str(anchor), "failed", True, "permission denied", NEEDS_ROOT)
            ]
        refreshed = self._refresh(anchor)
        if self.family.name == "debian":
            _links_undone(anchor)
        return [refreshed or self._outcome(anchor, "removed", root), *self._hooks_undone(root)]

    def _hooks_undone(self, root: Root) -> list[Outcome]:
        """Take out the copies the refresh's hooks made and did not take back: Debian's
        ca-certificates-java copies every anchor into Java's cacerts as `debian:FILE`,
        and leaves it there when the anchor goes (Java went on trusting a root that
        mkcert -uninstall had removed)."""
        store = cacerts()
        if self.family is None or self.family.name != "debian" or not store or not store.exists():
            return []
        if shutil.which("keytool") is None:
            return []
        copies = aliases(store, root, prefix="debian:")
        if not copies:
            return []
        failure = remove(store, copies)
        action = f"removed {copies[0]}, the system store's copy"
        return [failure or Outcome("java", str(store), action, _java_trusts(root))]

    def status(self, root: Root) -> list[Outcome]:
        if self.family is None:
            return [self._unknown()]
        anchor = self._file(root)
        trusted = trusted_by_openssl(root)
        return [Outcome(self.name, str(anchor), "trusted" if trusted else "not trusted", trusted)]

    def _refresh(self, anchor: Path) -> Outcome | None:
        """Run the family's refresh command; an Outcome only if it failed."""
        assert self.family is not None
        command = self.family.refresh
        if shutil.which(command[0]) is None:
            detail = f"{command[0]} not found"
            return Outcome(
                self.name, str(anchor), "failed", False, detail, "install ca-certificates"
            )
        done = run(command)
        if done.returncode != 0:
            hint = NEEDS_ROOT if os.geteuid() != 0 else ""
            return Outcome(
                self.name, str(anchor), "failed", False, f"{' '.join(command)}: {said(done)}", hint
            )
        return None

    def _outcome(self, anchor: Path, action: str, root: Root) -> Outcome:
        return Outcome(self.name, str(anchor), action, trusted_by_openssl(root))

    def _unknown(self) -> Outcome:
        return Outcome(
            self.name, str(OS_RELEASE), "failed", False,
            "this system is not one minica knows (Debian, Ubuntu, Fedora, RHEL, SUSE, Arch)",
            "macOS and Windows are not supported yet; the nss and java stores work anywhere",
        )  # fmt: skip


def _links_undone(anchor: Path) -> None:
    """Take out the links Debian's update-ca-certificates made for ``anchor`` in
    /etc/ssl/certs (NAME.pem to the anchor, HASH.N to NAME.pem). It rebuilds its bundle
    without a removed anchor but keeps those links, dangling; the next install of the same
    file then finds its link already there, counts it "0 added", and its hooks never hear
    of it: Java's cacerts did not get the root back."""
    pem = DEBIAN_CERTS / f"{anchor.stem}.pem"
    if not pem.is_symlink() or os.readlink(pem) != str(anchor):
        return
    for link in DEBIAN_CERTS.iterdir():
        if link.is_symlink() and os.readlink(link) in (pem.name, str(pem)):
            link.unlink(missing_ok=True)
    pem.unlink(missing_ok=True)


def trusted_by_openssl(root: Root) -> bool:
    """Whether OpenSSL, with its default verify paths (the bundle file and the hashed
    folder, as curl and Python read them), trusts the root: `openssl verify` on it."""
    if shutil.which("openssl") is None:
        return False
    with tempfile.NamedTemporaryFile(suffix=".pem") as file:
        file.write(root.pem)
        file.flush()
        return run(["openssl", "verify", file.name]).returncode == 0


def _java_trusts(root: Root) -> bool:
    try:
        return trusted_by_java(root)
    except CannotAsk:
        return False  # the java store's own status says why


def _write(path: Path, data: bytes) -> None:
    """The anchor file, world-readable (every program reads it), written whole."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.chmod(0o644)
    temporary.replace(path)
