"""Shared fixtures: settings, a migrated database on SQLite (always) and PostgreSQL (when given)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import create_engine, text

from wecom_app.clock import FakeClock
from wecom_app.db import Database, normalise_url, upgrade_database
from wecom_app.settings import Settings, load_settings
from wecom_app.wecom.crypto import CallbackCrypto

if TYPE_CHECKING:
    from tests.simulator_fixtures import Api
    from wecom_app.simulator import SimulatorServer

CORP_ID = "ww5823bf96d3bd56c7"
AGENT_ID = 1000002
APP_TOKEN = "AppToken123"
APP_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CONTACTS_TOKEN = "ContactsToken456"
CONTACTS_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
API_TOKEN = "test-api-token"

POSTGRES_URL = os.environ.get("WECOM_APP_TEST_POSTGRES_URL", "")


def base_settings(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments for load_settings that make a complete test configuration."""
    values: dict[str, Any] = {
        "spool_dir": os.path.join(tempfile.gettempdir(), f"wecom-app-spool-{os.getpid()}"),
        "corp_id": CORP_ID,
        "agent_id": AGENT_ID,
        "app_secret": "app-secret",
        "callback_token": APP_TOKEN,
        "callback_aes_key": APP_AES_KEY,
        "contacts_secret": "contacts-secret",
        "contacts_token": CONTACTS_TOKEN,
        "contacts_aes_key": CONTACTS_AES_KEY,
        "api_token": API_TOKEN,
        "callback_max_age": 0,
        "database_url": "sqlite:///:memory:",
    }
    values.update(overrides)
    return values


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate one SQLite file per session; tests get copies."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_database(f"sqlite:///{path}")
    return path


def _reset_postgres(url: str) -> None:
    """Drop and recreate the public schema, then migrate."""
    engine = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    upgrade_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, _sqlite_template: Path) -> str:
    """A freshly migrated database URL, once per backend."""
    if request.param == "sqlite":
        path = tmp_path / "app.db"
        shutil.copy(_sqlite_template, path)
        return f"sqlite:///{path}"
    if not POSTGRES_URL:
        if os.environ.get("WECOM_APP_REQUIRE_POSTGRES"):
            pytest.fail("WECOM_APP_REQUIRE_POSTGRES is set but WECOM_APP_TEST_POSTGRES_URL is not")
        pytest.skip("WECOM_APP_TEST_POSTGRES_URL not set")
    _reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
def sqlite_url(tmp_path: Path, _sqlite_template: Path) -> str:
    """A migrated SQLite database only, for tests that need no second backend."""
    path = tmp_path / "app.db"
    shutil.copy(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock starting on a Monday morning (UTC)."""
    return FakeClock()


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Complete settings pointing at the test database."""
    return load_settings(**base_settings(database_url=database_url))


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    """The test database."""
    database = Database(settings.database_url)
    yield database
    database.dispose()


@pytest.fixture
def app(settings: Settings, clock: FakeClock, tmp_path: Path) -> Iterator[Any]:
    """The Flask app over the test database, on the fake clock (nothing serves it)."""
    from wecom_app import create_app
    from wecom_app.compose import compose

    settings = settings.model_copy(update={"spool_dir": str(tmp_path / "spool")})
    composition = compose(settings, clock=clock)
    application = create_app(composition=composition)
    application.config["TESTING"] = True
    yield application
    composition.close()


@pytest.fixture
def client(app: Any) -> Any:
    """Flask's test client."""
    return app.test_client()


@pytest.fixture
def app_crypto() -> CallbackCrypto:
    """The app channel's crypto, as WeCom would use it."""
    return CallbackCrypto(APP_TOKEN, APP_AES_KEY, CORP_ID)


@pytest.fixture
def contacts_crypto() -> CallbackCrypto:
    """The contacts channel's crypto, as WeCom would use it."""
    return CallbackCrypto(CONTACTS_TOKEN, CONTACTS_AES_KEY, CORP_ID)


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    """A simulator over the sample org, one per test module (modules may override it)."""
    from tests.simulator_fixtures import start_simulator

    sim = start_simulator()
    yield sim
    sim.stop()


@pytest.fixture
def api(server: SimulatorServer) -> Iterator[Api]:
    """A caller of the simulator's WeCom API, on a simulator reset for each test."""
    from tests.simulator_fixtures import Api

    server.state.reset()
    client = Api(server)
    yield client
    client.http.close()
