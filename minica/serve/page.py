"""The page for people at `/`: which CA this is, how to get its root and trust it, and what
is about to expire. Plain HTML, no script, readable on a phone; every value escaped."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ..constraints import NameConstraints
from ..formats import iso
from ..registry import Record
from .crl import Published

STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 48rem; margin: 0 auto; padding: 1rem; }
code, pre { font: 14px ui-monospace, monospace; overflow-wrap: anywhere; }
pre { background: #f4f4f4; padding: .5rem; overflow-x: auto; white-space: pre-wrap; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: .2rem .4rem;
border-bottom: 1px solid #ddd; vertical-align: top; }
"""


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 fingerprint as browsers show it: upper-case hex pairs joined by colons."""
    return ":".join(f"{byte:02X}" for byte in certificate.fingerprint(hashes.SHA256()))


def render(
    certificate: x509.Certificate,
    base: str,
    crl: Published,
    expiring: list[Record],
    now: datetime,
    acme_directory: str | None = None,
) -> str:
    """The whole page for the CA ``certificate`` served at ``base`` (and its ACME
    directory, when it serves ACME)."""
    name = certificate.subject.rfc4514_string()
    constraints = NameConstraints.of(certificate)
    sections = [
        _identity(certificate, name, constraints),
        _downloads(base),
        _trust(base, _file_name(name)),
        _revocation(base, crl, now),
        _acme(acme_directory, base) if acme_directory else "",
        _expiring(expiring),
    ]
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{escape(name)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(name)}</h1>" + "".join(sections) + "</body></html>\n"
    )


def _identity(certificate: x509.Certificate, name: str, constraints: NameConstraints) -> str:
    permitted = [
        *constraints.dns,
        *(str(n) for n in constraints.ip),
        *(f"@{d}" for d in constraints.email),
    ]
    scope = (
        "only names under: " + ", ".join(f"<code>{escape(p)}</code>" for p in permitted)
        if permitted
        else "<strong>any name</strong> (no name constraints: trust it only where you must)"
    )
    rows = [
        ("Certificate authority", escape(name)),
        ("SHA-256 fingerprint", f"<code>{fingerprint(certificate)}</code>"),
        ("May certify", scope),
        (
            "Valid",
            f"{iso(certificate.not_valid_before_utc)} to {iso(certificate.not_valid_after_utc)}",
        ),
    ]
    cells = "".join(f"<tr><th scope=row>{key}</th><td>{value}</td></tr>" for key, value in rows)
    return f"<table>{cells}</table>"


def _downloads(base: str) -> str:
    links = [
        (f"{base}/ca.crt", "ca.crt", "this CA's certificate (DER)"),
        (f"{base}/ca.pem", "ca.pem", "the same, PEM"),
        (f"{base}/ca-chain.pem", "ca-chain.pem", "this CA and every CA above it, PEM"),
        (f"{base}/root.crt", "root.crt", "the root at the top of the chain (DER; root.pem: PEM)"),
        (f"{base}/crl", "crl", "the current CRL (DER)"),
    ]
    items = "".join(
        f'<li><a href="{escape(url)}">{label}</a>: {what}</li>' for url, label, what in links
    )
    return f"<h2>Download</h2><ul>{items}</ul>"


def _trust(base: str, file_name: str) -> str:
    pem = f"{base}/root.pem"
    der = f"{base}/root.crt"
    steps = {
        "Debian, Ubuntu": f"sudo curl -o /usr/local/share/ca-certificates/{file_name}.crt {pem}\n"
        "sudo update-ca-certificates",
        "Fedora, RHEL": f"sudo curl -o /etc/pki/ca-trust/source/anchors/{file_name}.pem {pem}\n"
        "sudo update-ca-trust extract",
        "macOS": f"curl -o {file_name}.crt {der}\nsudo security add-trusted-cert -d -r trustRoot "
        f"-k /Library/Keychains/System.keychain {file_name}.crt",
        "Windows (PowerShell as administrator)": (
            f"Invoke-WebRequest {der} -OutFile {file_name}.crt\n"
            f"Import-Certificate -FilePath {file_name}.crt "
            "-CertStoreLocation Cert:\\LocalMachine\\Root"
        ),
        "Firefox": (
            "Settings → Privacy & Security → Certificates → View Certificates → Authorities → "
            f"Import… the file from {der}, then tick “Trust this CA to identify websites”"
        ),
        "Java": f"curl -o {file_name}.crt {der}\n"
        f"keytool -importcert -cacerts -alias {file_name} -file {file_name}.crt",
    }
    blocks = "".join(
        f"<h3>{escape(system)}</h3><pre>{escape(text)}</pre>" for system, text in steps.items()
    )
    return f"<h2>Trust it</h2><p>Trust only the root, and only on machines of the lab.</p>{blocks}"


def _revocation(base: str, crl: Published, now: datetime) -> str:
    left = crl.next_update - now
    fresh = "fresh" if left > timedelta(0) else "<strong>out of date</strong>"
    return (
        "<h2>Revocation</h2>"
        f"<p>OCSP: <code>{escape(base)}/ocsp</code>. "
        f"CRL number {crl.number}, signed {iso(crl.this_update)}, next update "
        f"{iso(crl.next_update)} ({fresh}).</p>"
    )


def _acme(directory: str, base: str) -> str:
    """The directory URL and a command line for certbot and lego, trusting only the root
    (fetched from this service first)."""
    commands = {
        "certbot": (
            f"curl -o lab-root.pem {base}/root.pem\n"
            "sudo REQUESTS_CA_BUNDLE=$PWD/lab-root.pem certbot certonly --standalone "
            f"--server {directory} -d www.lab.example --agree-tos -m you@lab.example"
        ),
        "lego": (
            f"curl -o lab-root.pem {base}/root.pem\n"
            f"sudo LEGO_CA_CERTIFICATES=$PWD/lab-root.pem lego --server {directory} "
            "--email you@lab.example --accept-tos --domains www.lab.example --http run"
        ),
    }
    blocks = "".join(
        f"<h3>{escape(client)}</h3><pre>{escape(text)}</pre>" for client, text in commands.items()
    )
    return (
        f"<h2>ACME</h2><p>Directory: <code>{escape(directory)}</code>. Give ACME clients this URL "
        "and the root as their trust; replace www.lab.example by the machine's name.</p>" + blocks
    )


def _expiring(records: list[Record]) -> str:
    if not records:
        return "<h2>Expiring within 30 days</h2><p>Nothing.</p>"
    rows = "".join(
        f"<tr><td><code>{escape(r.serial)}</code></td><td>{escape(r.subject)}</td>"
        f"<td>{escape(r.profile)}</td><td>{iso(r.not_after)}</td></tr>"
        for r in records[:200]
    )
    more = f"<p>and {len(records) - 200} more.</p>" if len(records) > 200 else ""
    return (
        "<h2>Expiring within 30 days</h2><table><thead><tr><th>Serial</th><th>Subject</th>"
        f"<th>Profile</th><th>Expires</th></tr></thead><tbody>{rows}</tbody></table>{more}"
    )


def _file_name(name: str) -> str:
    """A file name for the root from its subject: letters, digits and dashes."""
    simple = "".join(c if c.isalnum() else "-" for c in name.split(",")[0].split("=")[-1])
    return "-".join(part for part in simple.lower().split("-") if part) or "minica-root"
