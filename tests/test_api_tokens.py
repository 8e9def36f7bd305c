"""Named API tokens: added and revoked from the CLI while the app runs, stored as digests,
read-only ones refused on writes; WECOM_APP_API_TOKEN keeps working beside them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.conftest import API_TOKEN
from tests.world import World, make_world
from wecom_app.cli import main
from wecom_app.models import ApiToken


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with make_world(database_url, mirror=True) as running:
        yield running


def cli(world: World, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), env=world.worker_env())
    assert result.exit_code == code, result.output + result.stderr
    return result.stdout


def test_named_tokens_work_at_once_by_their_access_and_stop_when_revoked(world: World) -> None:
    client = world.app.test_client()
    reader = cli(world, "api-token", "add", "hr-reports", "--read-only").strip()
    writer = cli(world, "api-token", "add", "oa-integration").strip()
    assert reader.startswith("wat_") and reader != writer
    with world.db.read() as session:
        stored = {t.name: t for t in session.scalars(select(ApiToken))}
    assert reader not in {t.digest for t in stored.values()}  # only the digest is kept
    assert {n: t.access for n, t in stored.items()} == {"hr-reports": "read",
                                                         "oa-integration": "write"}  # fmt: skip

    def call(token: str, method: str = "GET", path: str = "/api/v1/groups") -> int:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        return client.open(path, method=method, headers=headers, data="{}").status_code

    assert call(reader) == 200 and call(writer) == 200 and call(API_TOKEN) == 200
    assert call(reader, "POST", "/api/v1/surveys") == 403  # read-only
    assert call(writer, "POST", "/api/v1/surveys") == 400  # in, and told what is missing
    assert call(API_TOKEN, "POST", "/api/v1/surveys") == 400
    assert call("wat_" + "x" * 43) == 401 and call("") == 401

    assert "已吊销" in cli(world, "api-token", "revoke", "hr-reports")
    assert call(reader) == 401 and call(writer) == 200  # no restart needed
    listed = cli(world, "api-token", "list")
    assert "hr-reports\tread" in listed and "已吊销" in listed and reader not in listed
    cli(world, "api-token", "add", "hr-reports", code=1)  # a name is never reused
    cli(world, "api-token", "add", "bad name", code=1)
