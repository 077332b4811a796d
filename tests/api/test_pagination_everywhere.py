"""Every list is paginated, and walking its pages gives every row exactly once.

Generated from ``contracts/openapi.json``: a list is a GET whose answer is an array or an
object with ``items``. Each must take ``limit`` and ``cursor`` and answer ``next_cursor``;
then, over a seeded world, its pages are walked a row or a few at a time and compared with
the whole list read before and after the walk (rows may be added meanwhile, by the report
worker say: every row present before must be met once, and nothing that is not there after).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.worlds import Operation, World, build_world, operations, resolve
from tests.helpers import OPERATOR_ONLY
from training.bootstrap import Services
from training.core.pagination import MAX_LIMIT


def answers_a_list(operation: Operation) -> bool:
    if operation.method != "get":
        return False
    content = operation.spec["responses"].get("200", {}).get("content", {})
    if "application/json" not in content:
        return False
    schema = resolve(content["application/json"]["schema"])
    return schema.get("type") == "array" or "items" in schema.get("properties", {})


LISTS = [op for op in operations() if answers_a_list(op)]
# What names a row, whatever else in it changes while the test walks (a report's status, say).
IDENTITY = {"key", "code", "slug", "version", "revision", "plan_version", "position"}


def identity(row: dict[str, Any]) -> str:
    named = {k: v for k, v in row.items() if k in IDENTITY or k.endswith("_id")}
    if "report_id" in named:
        # A report's plan version is filled in when the worker renders it, which may happen
        # while the test walks the pages: its id names it.
        named.pop("plan_version", None)
    return json.dumps(named or row, sort_keys=True)


@pytest.fixture(scope="module")
def world(client: TestClient[Any], services: Services) -> World:
    return build_world(client, services)


def test_the_document_has_lists() -> None:
    assert len(LISTS) > 20, [op.operation_id for op in LISTS]


@pytest.mark.parametrize("operation", LISTS, ids=str)
def test_every_list_takes_limit_and_cursor_and_answers_the_next_cursor(
    operation: Operation,
) -> None:
    assert operation.takes("query", "limit"), operation
    assert operation.takes("query", "cursor"), operation
    schema = resolve(operation.spec["responses"]["200"]["content"]["application/json"]["schema"])
    assert {"items", "next_cursor"} <= set(schema.get("properties", {})), operation


def read_all(client: TestClient[Any], url: str, headers: dict[str, str], limit: int) -> list[Any]:
    rows: list[Any] = []
    cursor = None
    for _ in range(10_000):
        params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        response = client.get(url, headers=headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        rows += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows
        assert page["items"], "a page with a next cursor holds rows"
    raise AssertionError("the pages never end")


def reader(client: TestClient[Any], world: World, operation: Operation) -> tuple[str, Any]:
    """The list's URL in the world and the headers of a caller who may read it."""
    callers = (
        [world.callers["operator"]]
        if operation.operation_id in OPERATOR_ONLY
        else list(world.callers.values())
    )
    for caller in callers:
        url = world.url(operation, caller)
        if client.get(url, headers=caller.headers).status_code == 200:
            return url, caller.headers
    raise AssertionError(f"no caller may read {operation}")


@pytest.mark.parametrize("operation", LISTS, ids=str)
def test_walking_the_pages_gives_every_row_once(
    client: TestClient[Any], world: World, operation: Operation
) -> None:
    url, headers = reader(client, world, operation)
    before = read_all(client, url, headers, MAX_LIMIT)
    small = 1 if len(before) <= 20 else 7
    walked = read_all(client, url, headers, small)
    after = read_all(client, url, headers, MAX_LIMIT)
    ids = [identity(row) for row in walked]
    assert len(ids) == len(set(ids)), f"{operation} repeated a row"
    assert {identity(r) for r in before} <= set(ids) <= {identity(r) for r in after}, operation


def test_most_lists_have_several_pages_in_the_world(client: TestClient[Any], world: World) -> None:
    # A walk over one page proves little: the world holds two rows or more in most lists.
    rows = {
        op.operation_id: len(read_all(client, *reader(client, world, op), MAX_LIMIT))
        for op in LISTS
    }
    several = [name for name, count in rows.items() if count >= 2]
    assert len(several) >= len(LISTS) * 2 // 3, rows
