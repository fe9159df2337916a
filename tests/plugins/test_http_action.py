"""The built-in ``http`` action against a real HTTP server on the loopback interface."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pystator import (
    ActionExecutionError,
    InMemoryStateStore,
    Orchestrator,
    StateMachine,
    builtin_registries,
)

pytestmark = pytest.mark.integration


class Recorder(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else None
        Recorder.requests.append(
            {
                "method": self.command,
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "body": body,
            }
        )
        status = 500 if self.path.startswith("/fail") else 201
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    do_GET = do_POST = do_PUT = _handle

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output quiet
        return


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def machine(url: str, on_error: str = "raise") -> StateMachine:
    return StateMachine.from_dict(
        {
            "meta": {"machine_name": "webhook"},
            "states": [{"name": "new", "type": "initial"}, {"name": "sent"}],
            "transitions": [
                {
                    "trigger": "send",
                    "source": "new",
                    "dest": "sent",
                    "actions": [
                        {
                            "http": {
                                "url": url + "/orders/{{ order_id }}?n={{ qty * 2 }}",
                                "method": "POST",
                                "headers": {"Authorization": "Bearer {{ token }}"},
                                "body": {"status": "{{ order_id }}-sent", "qty": 3},
                                "on_error": on_error,
                            },
                            "timeout": 5,
                        }
                    ],
                }
            ],
        }
    )


def orchestrate(m: StateMachine, context: dict[str, Any]) -> Any:
    _, actions = builtin_registries()
    return Orchestrator(machine=m, state_store=InMemoryStateStore(), actions=actions).process_event(
        "o-1", "send", context
    )


def test_http_action_renders_templates_and_sends_json(server: str) -> None:
    assert orchestrate(machine(server), {"order_id": "A7", "qty": 4, "token": "s3cret"}).success
    (request,) = Recorder.requests
    assert request["method"] == "POST" and request["path"] == "/orders/A7?n=8"
    assert request["auth"] == "Bearer s3cret"
    assert json.loads(request["body"]) == {"status": "A7-sent", "qty": 3}


def test_http_failures_raise_or_are_logged(server: str) -> None:
    with pytest.raises(ActionExecutionError, match="HTTP Error 500"):
        orchestrate(machine(server + "/fail"), {"order_id": "B1", "qty": 1, "token": "t"})
    assert orchestrate(
        machine(server + "/fail", on_error="log"), {"order_id": "B2", "qty": 1, "token": "t"}
    ).success
    assert len(Recorder.requests) == 2


def test_http_refuses_other_schemes_after_rendering() -> None:
    m = machine("{{ base }}")
    with pytest.raises(ActionExecutionError, match="only http:// and https://"):
        orchestrate(m, {"base": "file:///etc", "order_id": 1, "qty": 1, "token": "t"})
