"""The dashboard's live parts (PostgreSQL and SQLite): the overview and an entity's page
re-render from the transition stream instead of polling, the session-authenticated stream
delivers transitions, and the Webhooks page shows each delivery and queues a test one."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.test_dashboard import browser_client, csrf
from tests.support.api_clients import MACHINE, client, drain, parcel
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    url = str(request.getfixturevalue(name))
    with client(url) as local:
        assert local.post("/api/v1/machines", json={"config": parcel()}).status_code == 201
        event = {"machine": MACHINE, "entity_id": "p1", "trigger": "ship"}
        assert local.post("/api/v1/events", json=event).status_code == 201
    drain(url)
    return url


def test_pages_subscribe_to_the_stream_instead_of_polling(db_url: str) -> None:
    for ui in browser_client(db_url, "viewer"):
        overview = ui.get("/ui").text
        assert 'data-stream="/ui/transitions/stream"' in overview
        assert "every 5s" not in overview
        entity = ui.get(f"/ui/entities/{MACHINE}/p1").text
        assert f"/ui/transitions/stream?machine={MACHINE}&amp;entity_id=p1" in entity
        assert 'hx-select="#entity-live"' in entity
        stream = ui.get("/ui/transitions/stream", params={"max_seconds": 0})
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")

        def resumed(ui: TestClient = ui) -> bool:  # PostgreSQL: once older transactions end
            text = ui.get(
                "/ui/transitions/stream",
                params={"max_seconds": 0, "entity_id": "p1"},
                headers={"Last-Event-ID": "0"},
            ).text
            return "event: transition" in text and '"entity_id":"p1"' in text

        wait_until(resumed, message="the entity's transitions in the stream")


def test_the_webhooks_page_shows_deliveries_and_queues_a_test(db_url: str) -> None:
    with client(db_url) as admin:
        body = {"name": "ops", "url": "http://127.0.0.1:9/hook", "kinds": ["dead_letter"]}
        hook = admin.post("/api/v1/webhooks", json=body).json()
    for ui in browser_client(db_url, "viewer"):
        page = ui.get("/ui/webhooks").text
        assert 'data-webhook="' in page and 'data-testid="test-webhook"' not in page
        refused = ui.post(f"/ui/webhooks/{hook['id']}/test", data={"csrf_token": csrf(ui)})
        assert refused.status_code == 403
    for ui in browser_client(db_url, "operator"):
        sent = ui.post(
            f"/ui/webhooks/{hook['id']}/test",
            data={"csrf_token": csrf(ui)},
            follow_redirects=True,
        )
        assert sent.status_code == 200 and 'data-testid="flash"' in sent.text
        assert 'data-delivery="' in sent.text and ">pending<" in sent.text
        assert ui.get("/ui/audit").text.count('data-route="/ui/webhooks/{webhook_id}/test"') == 1
