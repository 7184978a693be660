"""A real HTTP server on loopback that records what notifiers POST and answers as scripted."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any
    at: float = field(default_factory=time.monotonic)


@dataclass
class Receiver:
    """Requests so far, and the statuses to answer next (200 once the script runs out)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    script: deque[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, status: int, headers: dict[str, str] | None = None, **body: Any) -> None:
        """Answer the next unanswered request with this status (and JSON body)."""
        self.script.append((status, headers or {}, body))

    def bodies(self) -> list[Any]:
        """Decoded JSON bodies, in arrival order."""
        with self.lock:
            return [r.body for r in self.requests]


@contextmanager
def receiver() -> Iterator[Receiver]:
    """Serve on a free loopback port until the block ends."""
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                state.requests.append(
                    Received(self.path, dict(self.headers.items()), raw, json.loads(raw or b"null"))
                )
                status, headers, body = (
                    state.script.popleft() if state.script else (200, {}, {"ok": True})
                )
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="receiver", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
