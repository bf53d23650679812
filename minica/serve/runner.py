"""The listeners of `minica serve`: an HTTPS one and a plain HTTP one, each a Uvicorn
server on a socket of its own in one event loop, stopped together by SIGTERM or SIGINT
after the requests in flight (or by ``Running.stop`` in a test process)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import uvicorn

from ..credentials import Credential
from . import Endpoints, Service
from .app import build

GRACE_SECONDS = 10  # in-flight requests get this long to finish at shutdown

ACCESS_LOG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "access": {
            "()": "uvicorn.logging.AccessFormatter",
            "fmt": '%(client_addr)s "%(request_line)s" %(status_code)s',
            "use_colors": False,
        },
        "default": {"format": "%(message)s"},
    },
    "handlers": {
        "access": {
            "class": "logging.StreamHandler",
            "formatter": "access",
            "stream": "ext://sys.stderr",
        },
        "default": {
            "class": "logging.StreamHandler",
            "formatter": "default",
            "stream": "ext://sys.stderr",
        },
    },
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "WARNING", "propagate": False},
        "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


@dataclass(frozen=True)
class Listen:
    """One listener: where, and with which TLS context (None: plain HTTP)."""

    host: str
    port: int
    tls: ssl.SSLContext | None = None


class _Server(uvicorn.Server):
    """A Uvicorn server that leaves signals to the runner (two servers share them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Running:
    """Listeners that are up: their URLs, and how to stop them."""

    urls: Endpoints
    servers: list[_Server] = field(default_factory=list)
    thread: threading.Thread | None = None  # the thread they run in, when not the main one
    draining: asyncio.Task[None] | None = None  # kept, so that the task is not collected

    def stop(self, *, force: bool = False) -> None:
        """Stop listening and let requests in flight finish (up to GRACE_SECONDS); with
        ``force``, at once (a test's block is over: nothing of it is in flight)."""
        for server in self.servers:
            server.should_exit = True
            server.force_exit = force

    async def drain(self) -> None:
        """After ``stop``: once no request is in flight, close the connections left open.
        A client's idle keep-alive connection is no request in flight, but Uvicorn would
        wait for it to close, and a TLS one waits for the client's close_notify: a
        certbot or requests pool held `minica serve` for the whole grace period."""
        while any(server.server_state.tasks for server in self.servers):
            await asyncio.sleep(0.05)
        for server in self.servers:
            server.force_exit = True
            for connection in list(server.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.abort()

    def stop_on_signal(self) -> None:
        self.stop()
        self.draining = asyncio.get_running_loop().create_task(self.drain())


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: a free one), bound before anything is announced."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
    # proto says TCP, and accepted sockets take the listener's. With Nagle on, a response
    # written as headers then body waited for the client's delayed ACK: 40 ms a request
    # on a kept-alive connection (ACME clients keep theirs).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def free_port() -> int:
    """A 127.0.0.1 TCP port free at the moment of asking, for a peer to listen on later."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def url_of(sock: socket.socket, tls: bool) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}/"


async def serve(
    service: Service,
    sockets: list[tuple[socket.socket, ssl.SSLContext | None]],
    ready: Callable[[Running], None],
    *,
    handle_signals: bool,
    access_log: bool = True,
) -> None:
    """Run the listeners on ``sockets`` until stopped; ``ready`` is told their URLs."""
    urls = Endpoints(
        http_url=next((url_of(s, False) for s, tls in sockets if tls is None), None),
        https_url=next((url_of(s, True) for s, tls in sockets if tls is not None), None),
    )
    app = build(service, urls)
    running = Running(urls)
    for _, tls in sockets:
        config = uvicorn.Config(
            app,
            log_config=ACCESS_LOG,
            timeout_graceful_shutdown=GRACE_SECONDS,
            ssl_context_factory=_given(tls) if tls else None,
            lifespan="off",
            access_log=access_log,
            server_header=False,
        )
        running.servers.append(_Server(config))
    if handle_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, running.stop_on_signal)
    ready(running)
    await asyncio.gather(
        *(
            server.serve(sockets=[sock])
            for server, (sock, _) in zip(running.servers, sockets, strict=True)
        )
    )


def _given(
    context: ssl.SSLContext,
) -> Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]:
    """Uvicorn's hook for a TLS context, answering with ``context`` (ours: it is reloaded
    in place when the service's certificate is renewed)."""
    return lambda config, default: context


def tls_for(service: Service) -> ssl.SSLContext:
    """The HTTPS context of the service's own certificate, reloaded when it is renewed."""
    assert service.tls is not None
    identity = service.tls
    context = server_context(identity.current)

    def reload() -> None:  # into the same context: new handshakes get the new certificate
        identity.current.configure(context)

    service.on_tls_renewal.append(reload)
    return context


def server_context(credential: Credential) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2 or later) presenting ``credential``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    credential.configure(context)
    return context


def announce(running: Running) -> None:
    for url in (running.urls.https_url, running.urls.http_url):
        if url:
            print(f"serving {url}", file=sys.stderr, flush=True)
    if running.urls.acme_directory:
        print(f"acme directory {running.urls.acme_directory}", file=sys.stderr, flush=True)


def in_thread(
    service: Service, sockets: list[tuple[socket.socket, ssl.SSLContext | None]]
) -> Running:
    """Start the listeners in a thread of this process (for tests); returns once they are up."""
    started: list[Running] = []
    up = threading.Event()

    def ready(running: Running) -> None:
        started.append(running)
        up.set()

    thread = threading.Thread(
        target=lambda: asyncio.run(
            serve(service, sockets, ready, handle_signals=False, access_log=False)
        ),
        name="minica-serve",
        daemon=True,
    )
    thread.start()
    if not up.wait(30):
        raise RuntimeError("the service did not start within 30 s")
    started[0].thread = thread
    return started[0]


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets) as (host, port); InputError if it is not one."""
    from ..errors import InputError

    host, _, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or int(port) > 65535:
        raise InputError(f"{text!r} is not HOST:PORT, such as 127.0.0.1:8443")
    return host, int(port)


def listen_on(host: str, port: int) -> socket.socket:
    """``bind``, with a refusal in plain words when the address is taken or not ours."""
    from ..errors import StorageError

    try:
        return bind(host, port)
    except OSError as error:
        raise StorageError(f"cannot listen on {host}:{port}: {error.strerror}") from None
