"""A real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by selenium)
against a real ``pystator api`` and real workers on PostgreSQL and RabbitMQ.

Without a browser the tests skip with the reason (and fail under
``PYSTATOR_REQUIRE_SERVICES=1``, as in CI). No browser is ever downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.support import services
from tests.support.api_clients import create_key
from tests.support.fleet_processes import WorkerFleet
from tests.support.ports import free_port, port_open
from tests.support.waiting import wait_until
from tests.support.worker_processes import ROOT, env_for, pystator_cmd

CLAIMS = ROOT / "tests" / "fixtures" / "dashboard" / "claims.yaml"
APP = "tests.support.dashboard_app:factory"
#: Where screenshots go: ``PYSTATOR_SCREENSHOTS`` (``make screenshots`` sets docs/screenshots).
SCREENSHOTS_ENV = "PYSTATOR_SCREENSHOTS"
WINDOW = (1440, 1000)


def find_browser() -> tuple[str, str] | None:
    """Paths of the Chromium binary and its driver, if both are installed."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


@pytest.fixture(scope="session")
def browser_paths() -> tuple[str, str]:
    found = find_browser()
    if found is None:
        services.unavailable(
            "no browser for the dashboard tests: install Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver; .ci/run does)"
        )
        raise AssertionError("unreachable")
    return found


@pytest.fixture
def browser(browser_paths: tuple[str, str]) -> Iterator[object]:
    """A fresh headless Chromium window (its own cookies)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary, driver = browser_paths
    options = Options()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    chrome.set_page_load_timeout(60)
    try:
        yield chrome
    finally:
        chrome.quit()


@dataclass
class Stack:
    """The API's base URL, keys per role, the database, the outage marker, the workers."""

    base: str
    database_url: str
    engine: sa.Engine
    keys: dict[str, str]
    outage: Path
    fleet: WorkerFleet
    log_dir: Path

    def client(self, role: str = "operator") -> httpx.Client:
        return httpx.Client(
            base_url=self.base, headers={"X-API-Key": self.keys[role]}, timeout=30.0
        )

    def scalar(self, sql: str, **params: object) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(sql), params).scalar_one())


@pytest.fixture(scope="module")
def stack(
    postgres_server_url: str,
    _pg_migrated_template: str,
    amqp_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """``pystator api`` plus one worker on a database and a queue of this module alone."""
    name = f"pystator_ui_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{_pg_migrated_template}"'))
    url = sa.make_url(postgres_server_url).set(database=name).render_as_string(False)
    log_dir = tmp_path_factory.mktemp("dashboard")
    outage = log_dir / "assessor-outage"
    queue = f"ui-{uuid.uuid4().hex[:8]}"
    settings = {
        "PYSTATOR_DATABASE_URL": url,
        "PYSTATOR_BROKER_URL": amqp_url,
        "PYSTATOR_QUEUE": queue,
        "PYSTATOR_MACHINES": str(CLAIMS),
        "PYSTATOR_APP": APP,
        "PYSTATOR_LOG_FORMAT": "json",
        "PYSTATOR_HEARTBEAT_SECONDS": "1",
        "PYSTATOR_TEST_OUTAGE_FILE": str(outage),
    }
    keys = {role: create_key(url, role) for role in ("viewer", "operator", "admin")}
    port = free_port()
    log = (log_dir / "api.log").open("wb")
    api = subprocess.Popen(
        [*pystator_cmd(), "api", "--port", str(port)],
        cwd=ROOT,
        env=env_for(settings, clean=True),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    fleet = WorkerFleet(
        database_url=url,
        broker_url=amqp_url,
        log_dir=log_dir,
        concurrency=4,
        machines=CLAIMS,
        app=APP,
        extra_env={k: v for k, v in settings.items() if k not in ("PYSTATOR_MACHINES",)},
    )
    engine = sa.create_engine(url)
    try:
        wait_until(lambda: port_open(port), timeout=60, message="the API to listen")
        fleet.start_all(1)
        yield Stack(
            base=f"http://127.0.0.1:{port}",
            database_url=url,
            engine=engine,
            keys=keys,
            outage=outage,
            fleet=fleet,
            log_dir=log_dir,
        )
    finally:
        fleet.__exit__(None, None, None)
        api.terminate()
        try:
            api.wait(timeout=30)
        except subprocess.TimeoutExpired:
            api.kill()
        log.close()
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``$PYSTATOR_SCREENSHOTS`` (the committed docs/screenshots/), else a temporary folder."""
    target = os.environ.get(SCREENSHOTS_ENV)
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
