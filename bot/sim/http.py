"""A threaded HTTP server on 127.0.0.1 with a per-request handler function."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    """What the handler sees of one request."""

    method: str
    path: str
    raw_path: str  # path and query exactly as sent
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (empty object when empty)."""
        return json.loads(self.body) if self.body else {}


@dataclass
class Response:
    """What the handler answers; `drop` closes the connection without an answer."""

    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        """A JSON response."""
        return cls(
            status, json.dumps(data, default=str).encode(), {"Content-Type": "application/json", **(headers or {})}
        )


Handler = Callable[[Request], Response]


class LocalServer:
    """Serves `handler` on 127.0.0.1 in a daemon thread until stopped."""

    def __init__(self, handler: Handler, *, port: int = 0) -> None:
        outer = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _do(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                req = Request(
                    method=self.command,
                    path=parts.path,
                    raw_path=self.path,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                resp = outer.handler(req)
                if resp.drop:
                    self.close_connection = True
                    self.connection.close()
                    return
                data = resp.body if isinstance(resp.body, bytes) else str(resp.body).encode()
                self.send_response(resp.status)
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _do

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.handler = handler
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _H)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="local-server"
        )

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalServer:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()


# A fault for detail calls only: the next detail answer is valid JSON that lacks (or garbles) a
# field the API always sends. Listing requests leave it queued for the next detail request.
BAD_DETAIL = "bad_detail"


def next_fault(faults: deque[str], *, detail: bool) -> str | None:
    """Take the scripted fault for this request (call under the simulator's lock)."""
    if not faults or (faults[0] == BAD_DETAIL and not detail):
        return None
    return faults.popleft()


class Served:
    """start/stop/url for a simulator that serves its `handle` on a LocalServer in `_server`."""

    _server: LocalServer

    def start(self) -> Self:
        """Start serving on 127.0.0.1."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

    @property
    def url(self) -> str:
        """The base URL of the fake."""
        return self._server.url
