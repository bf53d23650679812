"""A sandbox where a test may change the machine's trust stores: a private mount namespace
in which /etc, /var and /usr/local/share/ca-certificates are overlays whose writes land on
a tmpfs seen only inside it (gone when it ends), and HOME is a folder of the test's own.

Why overlays of whole trees and not copies of /etc/ssl/certs alone: Debian's
`update-ca-certificates` writes /etc/ssl/certs (the bundle, the hash links, java/cacerts)
and then runs its hooks, and the Java hook appends to /var/lib/ca-certificates-java/pending
and runs `dpkg --triggers-only --pending`, which writes dpkg's own state under /var/lib/dpkg.
Every one of those writes must stay in the sandbox, so /etc and /var are overlays. /tmp
(where pytest's tmp folders are) stays the real one, so the test reads what happened, and
`Sandbox.written()` lists what the overlays took.

One sandbox is one long-lived process inside the namespace (`serve_commands`, a small
driver): the test sends it command lines one by one and gets back exit status and output,
so a test can install, run clients, uninstall and run them again, asserting between steps,
all against the same sandboxed stores. Every program the driver starts inherits the
namespace; servers (nginx) run outside it, on the shared loopback.

Needs root and permission to unshare a mount namespace: skips with the reason otherwise,
and fails under MINICA_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest
from conftest import Result, require_tool

OVERLAID = ("/etc", "/var", "/usr/local/share/ca-certificates")
# Variables that point clients at a CA file of their own: the sandbox's clients must use
# their defaults (OpenSSL's default paths, the JDK's cacerts), or the test proves nothing.
CA_OVERRIDES = (
    "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO", "NIX_SSL_CERT_FILE", "PIP_CERT", "AWS_CA_BUNDLE",
    "HTTPLIB2_CA_CERTS", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
    "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS",
)  # fmt: skip
PROXIES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
COMMAND_TIMEOUT = 120.0  # seconds for one command inside the sandbox


def sandbox_env(home: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without CA overrides and proxies, HOME at ``home``,
    plus ``env``."""
    dropped = {*CA_OVERRIDES, *PROXIES}
    kept = {
        k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("MINICA_CA")
    }
    return {**kept, "HOME": str(home), **(env or {})}


def mount_script(layers: Path) -> str:
    """The shell lines, run as the namespace's first process, that mount a tmpfs on
    ``layers`` and put an overlay over each of OVERLAID with its upper and work folders
    there. A tmpfs, not the tmp folder itself: in a container, /tmp may be an overlay,
    and an overlay's upper folder cannot be on one."""
    lines = ["set -e", f"mkdir -p {layers}", f"mount -t tmpfs -o mode=0755 minica-trust {layers}"]
    for index, target in enumerate(OVERLAID):
        upper, work = layers / f"{index}-upper", layers / f"{index}-work"
        lines.append(f"mkdir {upper} {work}")
        lines.append(
            f"mount -t overlay overlay -o lowerdir={target},upperdir={upper},workdir={work}"
            f" {target}"
        )
    return "\n".join(lines)


class Sandbox:
    """The driver's other end: ``run(argv)`` runs a command inside the namespace."""

    def __init__(self, process: subprocess.Popen[str], home: Path, layers: Path) -> None:
        self.process, self.home, self.layers = process, home, layers

    def run(
        self,
        *argv: str | Path,
        env: Mapping[str, str] | None = None,
        timeout: float = COMMAND_TIMEOUT,
    ) -> Result:
        """Run ``argv`` inside the sandbox with the sandbox's environment plus ``env``."""
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {
            "argv": [str(a) for a in argv],
            "env": sandbox_env(self.home, env),
            "timeout": timeout,
        }
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            said = self.process.stderr.read() if self.process.stderr else ""
            pytest.fail(f"the trust sandbox ended (its mounts failed?): {said}")
        reply = json.loads(answer)
        return Result(reply["code"], reply["stdout"], reply["stderr"])

    def sh(self, script: str, env: Mapping[str, str] | None = None) -> Result:
        return self.run("sh", "-c", script, env=env)

    def written(self) -> list[str]:
        """Every path the sandbox's programs wrote to (made, changed or deleted) in the
        overlaid trees, as seen inside the sandbox, and every file under its HOME. The
        layers' tmpfs is seen from inside only: `find` runs there."""
        paths = []
        for index, target in enumerate(OVERLAID):
            upper = self.layers / f"{index}-upper"
            found = self.run("find", upper, "-mindepth", "1")
            assert found.code == 0, found
            paths += [
                str(Path(target) / Path(line).relative_to(upper))
                for line in found.stdout.splitlines()
            ]
        return sorted([*paths, *(str(path) for path in self.home.rglob("*"))])


def unshare_refusal(folder: Path) -> str | None:
    """Why the sandbox's private mount namespace and overlays (layers on a tmpfs at
    ``folder``/probe) cannot be made here, or None."""
    if os.geteuid() != 0:
        return "the trust sandbox needs root (to unshare a mount namespace and mount overlays)"
    # The sandbox's own mounts, in a namespace of their own that ends at once.
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         mount_script(folder / "probe")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if done.returncode != 0:
        return f"no private mount namespace with an overlay here: {done.stderr.strip()}"
    return None


def require_sandbox(folder: Path) -> None:
    """Skip (fail under MINICA_REQUIRE_TOOLS=1) when the sandbox cannot be made."""
    require_tool("unshare")
    if (reason := unshare_refusal(folder)) is not None:
        if os.environ.get("MINICA_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{reason} (MINICA_REQUIRE_TOOLS=1)")
        pytest.skip(reason)


@contextmanager
def trust_sandbox(folder: Path) -> Iterator[Sandbox]:
    """A sandbox whose overlay layers and HOME are under ``folder``; the driver is stopped
    on exit, which ends the namespace and its mounts with it."""
    require_sandbox(folder)
    layers, home = folder / "layers", folder / "home"
    home.mkdir(parents=True)
    driver = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
    driver += "import trust_sandbox; trust_sandbox.serve_commands()"
    script = mount_script(layers) + f"\nexec {sys.executable} -c {quote(driver)}\n"
    process = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=sandbox_env(home),
    )  # fmt: skip
    sandbox = Sandbox(process, home, layers)
    try:
        # The driver answers only once the mounts are made: an answer means they hold.
        if sandbox.run("true").code != 0:
            pytest.fail("the trust sandbox does not run commands")
        yield sandbox
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def serve_commands(requests: IO[str] = sys.stdin, replies: IO[str] = sys.stdout) -> None:
    """The driver inside the namespace: one JSON request per line in, one reply per line out."""
    for line in requests:
        request: dict[str, Any] = json.loads(line)
        replies.write(
            json.dumps(execute(request["argv"], request["env"], request["timeout"])) + "\n"
        )
        replies.flush()


def execute(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> dict[str, Any]:
    try:
        done = subprocess.run(
            list(argv), env=dict(env), capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired as expired:
        return {"code": -1, "stdout": str(expired.stdout), "stderr": f"timed out: {expired}"}
    except OSError as error:
        return {"code": 127, "stdout": "", "stderr": str(error)}
    return {"code": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
