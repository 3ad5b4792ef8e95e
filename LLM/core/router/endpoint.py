"""One OpenAI-compatible endpoint over every configured model (``llmctl serve``, the window's switch).

It runs on the caller's event loop beside everything else (uvicorn serving :class:`EndpointApp` on a socket
bound here, so a taken port is a typed error at once), and routes through the caller's ``Runtime``: the
models it starts are the window's, under the same memory budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Iterator
from pathlib import Path

from ..errors import EndpointError
from ..protocol.relay import Relay
from ..runtime import Runtime
from .activity import Activity
from .app import EndpointApp
from .guard import WILDCARDS, allowed_host_names, is_loopback
from .tokens import TokenFile, rotate_token

# An answer still streaming when the endpoint stops is cut after this long.
STOP_GRACE_S = 2.0


class ModelEndpoint:
    def __init__(self, runtime: Runtime, host: str | None = None, port: int | None = None,
                 token_path: Path | None = None) -> None:
        self.runtime = runtime
        # Given ones stay; otherwise the yaml's, read again at each start (a reload may have changed them).
        self._host, self._port = host, port
        self.host = host or runtime.config.endpoint.host
        self.port = runtime.config.endpoint.port if port is None else port
        self.tokens = TokenFile(token_path)
        self.activity = Activity()
        self._relay = Relay()
        self._server = None
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def url(self) -> str:
        """The base URL other apps are given (OpenAI's, with /v1)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else "::1" if self.host == "::" else self.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/v1"

    @property
    def local_only(self) -> bool:
        """Bound to a loopback address: only this machine can connect."""
        return is_loopback(self.host)

    def token(self) -> str:
        return self.tokens.current()

    def rotate_token(self) -> str:
        """A new token for this endpoint; the old one stops working at once."""
        return rotate_token(self.tokens.path)

    async def start(self) -> None:
        """Bind and serve; EndpointError when the port is taken or the token cannot be had."""
        if self.running:
            return
        settings = self.runtime.config.endpoint
        self.host = self._host or settings.host
        self.port = settings.port if self._port is None else self._port
        try:
            self.tokens.current()
        except EndpointError as exc:
            where = "" if is_loopback(self.host) else f" (it would listen on {self.host}, beyond this machine)"
            raise EndpointError(f"the endpoint will not start without its token{where}: {exc}") from exc
        sock = self._bind()
        self.port = sock.getsockname()[1]
        # This machine's names matter only on a wildcard bind; finding them may ask the resolver (off the loop).
        machine = await asyncio.to_thread(_machine_names) if self.host in WILDCARDS else []
        allowed = allowed_host_names(self.host, settings.allowed_hosts, machine)
        app = EndpointApp(self.runtime, self.tokens, allowed, self.activity, self._relay)
        server = self._server = _server(app)
        task = self._task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():  # it failed to start (or a stop came first): say why
                if not task.cancelled():
                    task.result()
                raise EndpointError(f"the endpoint on {self.url} stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and self._server is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._relay.aclose()

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP named, so asyncio sets TCP_NODELAY on each connection: without it an answer written in
        # two pieces (head, body) waits out the client's delayed ACK, 40 ms a request.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise EndpointError(f"port {self.port} on {self.host} is taken by another program; choose another "
                                    "port (endpoint.port in llm_backends.yaml, or llmctl serve --port)") from exc
            raise EndpointError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from exc
        sock.setblocking(False)
        return sock


def _server(app: EndpointApp):
    import uvicorn  # only once an endpoint starts

    class QuietServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the window and llmctl own Ctrl-C and SIGTERM

    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, http="h11",
                            timeout_graceful_shutdown=STOP_GRACE_S, server_header=False, date_header=False)
    return QuietServer(config)


def _machine_names() -> list[str]:
    """This machine's names and addresses, which a client on the network may put in the Host header."""
    names = {socket.gethostname(), socket.getfqdn()}
    with contextlib.suppress(OSError):
        names.update(info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None))
    return sorted(n for n in names if n)
