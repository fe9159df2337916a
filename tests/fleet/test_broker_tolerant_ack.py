"""A finished task whose ack fails the way kombu's Redis transport fails after a broker restart
(``AttributeError`` from a channel whose connection is gone) is logged, not raised: raised in the
worker's event loop it made Celery stop the worker ("Unrecoverable error")."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from celery.contrib.testing.mocks import TaskMessage
from kombu import Message

from pystator.config.settings import Settings
from pystator.fleet.celery_config import BrokerTolerantRequest, FleetTask, new_app


class GoneChannel:
    """A channel whose connection the broker outage took away."""

    def basic_ack(self, delivery_tag: Any, multiple: bool = False) -> None:
        raise AttributeError("'NoneType' object has no attribute 'hostname'")

    def basic_reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        raise AttributeError("'NoneType' object has no attribute 'hostname'")


def request_for(message: Message, *, app: Any) -> BrokerTolerantRequest:
    return BrokerTolerantRequest(
        message,
        on_ack=message.ack_log_error,
        on_reject=message.reject_log_error,
        app=app,
        task=app.tasks["t.noop"],
    )


def noop() -> None:
    """The task the requests belong to."""


@pytest.fixture
def app() -> Any:
    celery = new_app(Settings(broker_url="memory://"))
    celery.task(name="t.noop", shared=False)(noop)
    return celery


def task_message() -> Message:
    mock = TaskMessage("t.noop", id="1")
    return Message(
        body=mock.body,
        channel=GoneChannel(),
        delivery_tag=1,
        headers=mock.headers,
        properties=mock.properties,
        content_type=mock.content_type,
        content_encoding=mock.content_encoding,
    )


def test_the_fleet_s_tasks_use_the_tolerant_request(app: Any) -> None:
    task = app.tasks["t.noop"]
    assert isinstance(task, FleetTask) and task.Request is BrokerTolerantRequest


def test_an_ack_on_a_lost_connection_is_logged_not_raised(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    request = request_for(task_message(), app=app)
    with caplog.at_level(logging.CRITICAL, logger="pystator.celery"):
        request.acknowledge()
    assert request.acknowledged
    assert "Couldn't ack" in caplog.text


def test_a_reject_on_a_lost_connection_is_logged_not_raised(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    request = request_for(task_message(), app=app)
    with caplog.at_level(logging.CRITICAL, logger="pystator.celery"):
        request.reject(requeue=True)
    assert "Couldn't reject" in caplog.text


def test_kombu_alone_raises_it() -> None:
    """What the request guards against (if kombu fixes it, this test says so)."""
    with pytest.raises(AttributeError):
        task_message().ack_log_error(logging.getLogger("t"), (ConnectionError,))
