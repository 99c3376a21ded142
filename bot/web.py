"""HTTP entry: a small WSGI app with /slack/events, /healthz, /readyz, /metrics and the providers'
webhooks (/webhooks/modzy/<queue>, bot/pipeline/webhooks.py), served by waitress."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from slack_sdk.signature import SignatureVerifier

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    from bot.ops.health import Report
    from bot.ops.metrics import Metrics
    from bot.pipeline.webhooks import Webhooks

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
EVENTS_PATH = "/slack/events"
WEBHOOK_PATH = "/webhooks/modzy/"  # + the queue's name
MAX_STAMP_DIGITS = 12  # Unix seconds have 10 digits until the year 2286


def signed_by_slack(verifier: SignatureVerifier, *, timestamp: str | None, signature: str | None, body: bytes) -> bool:
    """Whether a request carries Slack's v0 signature of `body`, made less than 5 minutes ago
    (https://docs.slack.dev/authentication/verifying-requests-from-slack/).

    Never raises: the timestamp must be ASCII digits 0-9 only, a few of them (str.isdigit() also
    accepts other scripts' digits, which int() may or may not read, and superscripts, which it
    refuses; a long run of digits overflows the float arithmetic of the 5-minute check), and
    the signature ASCII (hmac.compare_digest raises on other text). Only then does slack_sdk's
    SignatureVerifier, the one Bolt uses, compare signatures.
    """
    if not timestamp or not signature:
        return False
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_STAMP_DIGITS):
        return False
    if not signature.isascii():
        return False
    return verifier.is_valid(body, timestamp, signature)


def _send(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


class WebApp:
    """Routes requests: health, readiness and metrics answered here, Slack requests checked and
    handed to Bolt. Without a Bolt app (the worker process) /slack/events is 404.

    Every request to /slack/events is verified here, with `signing_secret`, before Bolt sees it:
    anything not signed by Slack gets a 401 and nothing else, so no handler (not even Bolt's
    error handler, which could answer through the unverified body's response_url) runs for it.
    """

    def __init__(
        self,
        app: App | None,
        *,
        signing_secret: str | None = None,
        health: Callable[[], dict[str, Any]] | None = None,
        ready: Callable[[], Report] | None = None,
        metrics: Metrics | None = None,
        webhooks: Webhooks | None = None,
    ) -> None:
        if app is not None and not signing_secret:
            raise ValueError("WebApp: a Bolt app needs the signing secret to verify Slack's requests")
        self.bolt: SlackRequestHandler | None = None
        if app is not None:  # Bolt only where Slack is served: `jobwatch worker` never loads it
            from slack_bolt.adapter.wsgi import SlackRequestHandler

            self.bolt = SlackRequestHandler(app, path=EVENTS_PATH)
        self.verifier = SignatureVerifier(signing_secret) if signing_secret else None
        flow = app.oauth_flow if app is not None else None
        self.oauth_paths = frozenset({flow.install_path, flow.redirect_uri_path}) if flow is not None else frozenset()
        self.health = health or (lambda: {})
        self.ready = ready
        self.metrics = metrics
        self.webhooks = webhooks

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz" and method in ("GET", "HEAD"):
            return _send(start_response, "200 OK", {"status": "ok", **self.health()})
        if path in self.oauth_paths and method == "GET" and self.bolt is not None:
            return self.bolt(environ, start_response)  # install mode: Bolt's OAuth flow
        if path == "/readyz" and method in ("GET", "HEAD") and self.ready is not None:
            report = self.ready()
            return _send(start_response, "200 OK" if report.ready else "503 Service Unavailable", report.body)
        if path == "/metrics" and method in ("GET", "HEAD") and self.metrics is not None:
            from bot.ops.metrics import CONTENT_TYPE

            data = self.metrics.render()
            start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(data)))])
            return [data]
        if path.startswith(WEBHOOK_PATH) and self.webhooks is not None:
            return self._webhook(path[len(WEBHOOK_PATH) :], method, environ, start_response)
        if path != EVENTS_PATH or self.bolt is None or self.verifier is None:
            return _send(start_response, "404 Not Found", {"error": "not found"})
        if method != "POST":
            return _send(start_response, "405 Method Not Allowed", {"error": "POST only"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _send(start_response, "400 Bad Request", {"error": "bad content length"})
        if length > MAX_BODY:
            return _send(start_response, "413 Payload Too Large", {"error": "body too large"})
        try:
            body = environ["wsgi.input"].read(length) if length else b""
            body.decode("utf-8")
        except UnicodeDecodeError:
            return _send(start_response, "400 Bad Request", {"error": "body is not UTF-8"})
        stamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE")
        if not signed_by_slack(self.verifier, timestamp=stamp, signature=signature, body=body):
            return _send(start_response, "401 Unauthorized", {"error": "invalid request"})
        environ["wsgi.input"] = _Body(body)
        try:
            return self.bolt(environ, start_response)
        except ValueError:  # Bolt parses the body before dispatching, e.g. json.JSONDecodeError
            return _send(start_response, "400 Bad Request", {"error": "body cannot be parsed"})

    def _webhook(self, queue: str, method: str, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        """A provider's webhook: POST only, a body of at most MAX_BODY bytes; the rest is the
        queue's (bot/pipeline/webhooks.py): its secret, its payload, one stored row."""
        assert self.webhooks is not None
        if method != "POST":
            return _send(start_response, "405 Method Not Allowed", {"error": "POST only"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _send(start_response, "400 Bad Request", {"error": "bad content length"})
        if length > MAX_BODY:
            return _send(start_response, "413 Payload Too Large", {"error": "body too large"})
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
        status, answer = self.webhooks.receive(queue, headers, body)
        return _send(start_response, STATUS_TEXT.get(status, f"{status} Error"), answer)


STATUS_TEXT = {
    200: "200 OK",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    404: "404 Not Found",
}


class _Body:
    """A re-readable request body (we read it once to check it)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size is None or size < 0 else self.pos + size
        chunk = self.data[self.pos : end]
        self.pos = end if end <= len(self.data) else len(self.data)
        return chunk


def serve(app: WebApp, *, port: int, host: str = "0.0.0.0", threads: int = 16) -> None:
    """Serve with waitress, a production WSGI server, until interrupted."""
    import waitress

    log.info("http_listening host=%s port=%d path=%s", host, port, EVENTS_PATH)
    waitress.serve(app, host=host, port=port, threads=threads, ident="jobwatch", max_request_body_size=MAX_BODY)


class Background:
    """The WSGI app served by waitress in a thread (the demo, the tests and the worker's ops port).

    The event loop runs in short turns so `close()` can stop it; the socket is closed by the
    loop's own thread, never under a running select() (which fails with EBADF).
    """

    def __init__(self, app: WebApp, *, host: str = "127.0.0.1", port: int = 0, threads: int = 8) -> None:
        import threading

        import waitress.server

        server = waitress.server.create_server(app, host=host, port=port, threads=threads)
        assert isinstance(server, waitress.server.TcpWSGIServer) and server.socket is not None
        self._server = server
        self.url = f"http://{host}:{server.socket.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="http")
        self._thread.start()

    def _run(self) -> None:
        from waitress import wasyncore

        server = self._server
        try:
            while not self._stop.is_set():
                wasyncore.loop(timeout=0.05, map=server._map, count=1)  # type: ignore[attr-defined]
        finally:
            server.close()
            for channel in list(server._map.values()):  # type: ignore[attr-defined]
                channel.close()
            server.task_dispatcher.shutdown()

    def close(self) -> None:
        """Stop the loop, then the connections and the worker threads."""
        self._stop.set()
        self._thread.join(timeout=5)
