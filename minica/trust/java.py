"""Java's trust store: the cacerts of the `java` on PATH (or under $JAVA_HOME), changed
with the JDK's keytool and checked by Java's own default TrustManager, which is what an
HTTPS client of that Java trusts."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .base import Outcome, Root, run, said

STOREPASS = "changeit"  # every JDK's cacerts password: a public constant, not a secret
MISSING = (
    "keytool not found: install a JDK or JRE (Debian, Ubuntu: apt install default-jre-headless)"
)
NEEDS_ROOT = "this Java's cacerts belongs to root: run it with sudo"
JDK = "the check is a one-file Java program: install a JDK (apt install default-jdk-headless)"
# Run with `java Check.java CERT`: exit 0 if the default TrustManager trusts the chain.
CHECK = """
import java.io.FileInputStream;
import java.security.KeyStore;
import java.security.cert.*;
import javax.net.ssl.*;

public class Check {
    public static void main(String[] args) throws Exception {
        CertificateFactory factory = CertificateFactory.getInstance("X.509");
        X509Certificate root;
        try (FileInputStream in = new FileInputStream(args[0])) {
            root = (X509Certificate) factory.generateCertificate(in);
        }
        String algorithm = TrustManagerFactory.getDefaultAlgorithm();
        TrustManagerFactory trust = TrustManagerFactory.getInstance(algorithm);
        trust.init((KeyStore) null);  // the default: this Java's cacerts
        X509TrustManager manager = (X509TrustManager) trust.getTrustManagers()[0];
        String kind = root.getPublicKey().getAlgorithm().equals("RSA") ? "RSA" : "ECDHE_ECDSA";
        try {
            manager.checkServerTrusted(new X509Certificate[] {root}, kind);
            System.out.println("trusted");
        } catch (CertificateException refused) {
            System.out.println("not trusted: " + refused.getMessage());
            System.exit(3);
        }
    }
}
"""


def java_home() -> Path | None:
    """The Java whose store is meant: $JAVA_HOME, else the one `java` on PATH is."""
    if os.environ.get("JAVA_HOME"):
        return Path(os.environ["JAVA_HOME"])
    java = shutil.which("java")
    return Path(java).resolve().parent.parent if java else None


def cacerts() -> Path | None:
    home = java_home()
    return (home / "lib" / "security" / "cacerts") if home else None


class JavaStore:
    name = "java"

    def found(self) -> bool:
        store = cacerts()
        return store is not None and store.exists()

    def install(self, root: Root) -> list[Outcome]:
        store = cacerts()
        if problem := self._unusable(store):
            return [problem]
        assert store is not None
        # Its own alias, even beside a copy Debian's hook made for the system store: that
        # one goes when the system store's anchor does.
        if root.slug in aliases(store, root):
            return [self._outcome(store, "already installed", root)]
        with tempfile.NamedTemporaryFile(suffix=".pem") as file:
            file.write(root.pem)
            file.flush()
            done = run(["keytool", "-importcert", "-noprompt", "-keystore", store,
                        "-storepass", STOREPASS,
                        "-alias", root.slug, "-file", file.name])  # fmt: skip
        if done.returncode != 0:
            return [self._failed(store, "keytool -importcert", done)]
        return [self._outcome(store, "installed", root)]

    def uninstall(self, root: Root) -> list[Outcome]:
        store = cacerts()
        if problem := self._unusable(store):
            return [problem]
        assert store is not None
        # Only install's own alias: a copy Debian's hook made belongs to the system store,
        # and one a user imported by hand is the user's.
        found = [alias for alias in aliases(store, root) if alias == root.slug]
        if not found:
            return [self._outcome(store, "not installed", root)]
        failure = remove(store, found)
        return [failure or self._outcome(store, "removed", root)]

    def status(self, root: Root) -> list[Outcome]:
        store = cacerts()
        if problem := self._unusable(store):
            return [problem]
        assert store is not None
        return [self._outcome(store, "", root)]

    def _outcome(self, store: Path, action: str, root: Root) -> Outcome:
        try:
            trusted = trusted_by_java(root)
        except CannotAsk as why:
            return Outcome(self.name, str(store), "failed", False, str(why), JDK)
        verdict = action or ("trusted" if trusted else "not trusted")
        return Outcome(self.name, str(store), verdict, trusted)

    def _unusable(self, store: Path | None) -> Outcome | None:
        if store is None or not store.exists():
            return Outcome(
                self.name,
                str(store or "java"),
                "failed",
                False,
                "no Java found (java on PATH or $JAVA_HOME)",
            )
        if shutil.which("keytool") is None:
            return Outcome(self.name, str(store), "failed", False, MISSING)
        return None

    def _failed(self, store: Path, what: str, done: object) -> Outcome:
        hint = NEEDS_ROOT if not os.access(store, os.W_OK) else ""
        return Outcome(self.name, str(store), "failed", False, f"{what}: {said(done)}", hint)  # type: ignore[arg-type]


def aliases(store: Path, root: Root, prefix: str = "") -> list[str]:
    """The aliases under which ``store`` holds ``root`` (matched by SHA-256 fingerprint),
    those starting with ``prefix`` only when given."""
    done = run(["keytool", "-list", "-keystore", store, "-storepass", STOREPASS])
    wanted = ":".join(root.fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    found, alias = [], None
    for line in done.stdout.splitlines():
        if "," in line and ("trustedCertEntry" in line or "PrivateKeyEntry" in line):
            alias = line.split(",", 1)[0]
        elif "(SHA-256):" in line and alias is not None:
            if line.rsplit(" ", 1)[-1].strip() == wanted and alias.startswith(prefix):
                found.append(alias)
            alias = None
    return found


def remove(store: Path, found: list[str]) -> Outcome | None:
    for alias in found:
        done = run(
            [
                "keytool",
                "-delete",
                "-noprompt",
                "-keystore",
                store,
                "-storepass",
                STOREPASS,
                "-alias",
                alias,
            ]
        )
        if done.returncode != 0:
            hint = NEEDS_ROOT if not os.access(store, os.W_OK) else ""
            return Outcome(
                "java", str(store), "failed", True, f"keytool -delete: {said(done)}", hint
            )
    return None


class CannotAsk(Exception):
    """This Java cannot say (no java, or one whose launcher runs no source file)."""


def trusted_by_java(root: Root) -> bool:
    """Java's own answer: whether its default TrustManager accepts the root, from a
    one-file program run by the JDK's launcher. CannotAsk when no Java can run it (a
    JRE without the compiler module runs no source file)."""
    home = java_home()
    java = home / "bin" / "java" if home else None
    if java is None or not java.exists():
        raise CannotAsk("no Java found (java on PATH or $JAVA_HOME)")
    with tempfile.TemporaryDirectory(prefix="minica-trust-") as folder:
        (Path(folder) / "Check.java").write_text(CHECK)
        (Path(folder) / "root.pem").write_bytes(root.pem)
        done = run([java, Path(folder) / "Check.java", Path(folder) / "root.pem"])
    if done.returncode not in (0, 3):  # 3: Check's own "not trusted"
        raise CannotAsk(f"java could not run its check: {said(done)}")
    return done.returncode == 0
