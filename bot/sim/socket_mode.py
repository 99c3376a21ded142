"""A local stand-in for Slack's Socket Mode end: a WebSocket server on 127.0.0.1 that the URL from
`apps.connections.open` (bot/sim/slack.py) points at.

Slack's wire format, as docs/slack-native.md §Socket Mode describes it: on connecting, the app gets
`{"type": "hello", ...}`; each request is an envelope `{"envelope_id", "type": "events_api" |
"slash_commands" | "interactive", "payload", "accepts_response_payload", "retry_attempt",
"retry_reason"}`; the app acknowledges it by sending `{"envelope_id", "payload"?}` on the same
connection; Slack may send `{"type": "disconnect", "reason": ...}` and expects the app to open a new
connection. The WebSocket itself is RFC 6455: client frames masked, server frames not, ping
answered with pong.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import socket
import struct
import threading
import time
from typing import Any

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


class _Conn:
    """One accepted WebSocket connection."""

    def __init__(self, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number
        self.open = True
        self._send_lock = threading.Lock()

    def send(self, opcode: int, data: bytes) -> None:
        head = bytes([0x80 | opcode])
        n = len(data)
        if n < 126:
            head += bytes([n])
        elif n < 1 << 16:
            head += bytes([126]) + struct.pack("!H", n)
        else:
            head += bytes([127]) + struct.pack("!Q", n)
        with self._send_lock:
            self.sock.sendall(head + data)

    def read_exactly(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out

    def frame(self) -> tuple[int, bytes]:
        first, second = self.read_exactly(2)
        opcode, masked, n = first & 0x0F, second & 0x80, second & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.read_exactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.read_exactly(8))[0]
        key = self.read_exactly(4) if masked else b""
        data = self.read_exactly(n)
        if key:
            data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
        return opcode, data

    def close(self) -> None:
        self.open = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class SocketModeServer:
    """Slack's side of Socket Mode: hands out connections, sends envelopes, collects the acks."""

    def __init__(self, *, app_id: str = "A0001") -> None:
        self.app_id = app_id
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._conns: list[_Conn] = []
        self._acks: dict[str, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._tickets = itertools.count(1)
        self.connections = 0  # WebSocket connections accepted so far
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="socket-mode-accept").start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def issue_url(self) -> str:
        """A fresh ws:// URL, as `apps.connections.open` returns (one ticket per call)."""
        return f"ws://127.0.0.1:{self.port}/link/?ticket={next(self._tickets)}&app_id={self.app_id}"

    # -- Slack's side --------------------------------------------------------------------

    def wait_connected(self, count: int = 1, timeout: float = 15) -> None:
        """Until `count` connections have been accepted in all and one of them is open."""
        with self._cond:
            if not self._cond.wait_for(
                lambda: self.connections >= count and any(c.open for c in self._conns), timeout=timeout
            ):
                raise TimeoutError(f"{self.connections} socket mode connection(s), wanted {count}")

    def send(self, kind: str, payload: dict[str, Any], *, accepts_response_payload: bool = False) -> str:
        """Send one envelope on the open connection; its envelope id."""
        envelope_id = f"env-{next(self._ids)}"
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        self._current().send(TEXT, json.dumps(envelope).encode())
        return envelope_id

    def ack(self, envelope_id: str, timeout: float = 10) -> dict[str, Any]:
        """The acknowledgement the app sent for `envelope_id` (waits for it)."""
        with self._cond:
            if not self._cond.wait_for(lambda: envelope_id in self._acks, timeout=timeout):
                raise TimeoutError(f"no ack for {envelope_id}")
            return self._acks[envelope_id]

    def drop(self) -> None:
        """Cut every open connection without a close frame (a network drop)."""
        with self._cond:
            conns = [c for c in self._conns if c.open]
        for conn in conns:
            conn.close()

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask the app to reconnect, as Slack does before it recycles a connection."""
        self._current().send(TEXT, json.dumps({"type": "disconnect", "reason": reason}).encode())

    def close(self) -> None:
        self._closed = True
        self.drop()
        self._listener.close()

    # -- the server ----------------------------------------------------------------------

    def _current(self) -> _Conn:
        deadline = time.monotonic() + 10
        while True:
            with self._cond:
                open_ = [c for c in self._conns if c.open]
            if open_:
                return open_[-1]
            if time.monotonic() > deadline:
                raise ConnectionError("no open socket mode connection")
            time.sleep(0.02)

    def _accept(self) -> None:
        while not self._closed:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True, name="socket-mode-conn").start()

    def _serve(self, sock: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = sock.recv(4096)
            if not chunk:
                sock.close()
                return
            request += chunk
        headers = {}
        for line in request.split(b"\r\n")[1:]:
            if b":" in line:
                name, value = line.split(b":", 1)
                headers[name.strip().lower().decode()] = value.strip().decode()
        key = headers.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        sock.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        with self._cond:
            self.connections += 1
            conn = _Conn(sock, self.connections)
            self._conns.append(conn)
        hello = {
            "type": "hello",
            "num_connections": 1,
            "debug_info": {"host": "local-stand-in", "approximate_connection_time": 3600},
            "connection_info": {"app_id": self.app_id},
        }
        conn.send(TEXT, json.dumps(hello).encode())
        with self._cond:
            self._cond.notify_all()
        try:
            while conn.open:
                opcode, data = conn.frame()
                if opcode == PING:
                    conn.send(PONG, data)
                elif opcode == CLOSE:
                    conn.send(CLOSE, data[:2])
                    break
                elif opcode == TEXT:
                    self._on_text(data)
        except (ConnectionError, OSError, ValueError):
            pass
        finally:
            conn.close()
            with self._cond:
                self._cond.notify_all()

    def _on_text(self, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if isinstance(message, dict) and message.get("envelope_id"):
            with self._cond:
                self._acks[str(message["envelope_id"])] = message
                self._cond.notify_all()
