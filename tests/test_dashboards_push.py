"""`pantau dashboards push` speaks Grafana's HTTP API (checked against a recording HTTP server)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from tests.helpers import run_pantau


class _Recorder(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, str, dict[str, Any] | None, str]]] = []
    folder_exists = False

    def _body(self) -> dict[str, Any] | None:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.requests.append(("GET", self.path, None, self.headers["Authorization"]))
        if self.folder_exists:
            self._reply(200, {"uid": "pantau"})
        else:
            self._reply(404, {"message": "folder not found"})

    def do_POST(self) -> None:
        body = self._body()
        self.requests.append(("POST", self.path, body, self.headers["Authorization"]))
        if self.path == "/api/folders":
            type(self).folder_exists = True
            self._reply(200, {"uid": "pantau"})
        else:
            self._reply(200, {"status": "success", "uid": (body or {})["dashboard"]["uid"]})

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def grafana() -> Iterator[str]:
    _Recorder.requests = []
    _Recorder.folder_exists = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_push_creates_folder_and_uploads_every_dashboard(grafana: str) -> None:
    """The folder is created once, then four dashboards are posted with overwrite and token."""
    result = run_pantau(
        "dashboards",
        "push",
        "--grafana",
        grafana,
        "--token",
        "t0k",
        timeout_s=60,
    )
    assert result.returncode == 0, result.stderr
    calls = _Recorder.requests
    assert all(auth == "Bearer t0k" for *_, auth in calls)
    assert [(m, p) for m, p, _, _ in calls[:2]] == [
        ("GET", "/api/folders/pantau"),
        ("POST", "/api/folders"),
    ]
    uploads = [body for m, p, body, _ in calls if p == "/api/dashboards/db"]
    assert [u["dashboard"]["uid"] for u in uploads if u] == [
        "pantau-command-center",
        "pantau-site",
        "pantau-camera",
        "pantau-health",
        "pantau-services",
    ]
    assert all(u and u["overwrite"] is True and u["folderUid"] == "pantau" for u in uploads)
    assert "pushed 5 dashboards" in result.stdout


def test_push_to_unreachable_grafana_fails_readably() -> None:
    """A refused connection is an error message, not a traceback."""
    result = run_pantau(
        "dashboards",
        "push",
        "--grafana",
        "http://127.0.0.1:9",
        "--token",
        "x",
        timeout_s=60,
    )
    assert result.returncode == 2
    assert "push to http://127.0.0.1:9 failed" in result.stderr
    assert "Traceback" not in result.stderr
