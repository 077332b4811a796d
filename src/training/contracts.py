"""Generates ``contracts/``: the OpenAPI document and one JSON Schema per event type.

Both are derived from the code. ``training contracts write`` refreshes the files and
``training contracts check`` (run by the test suite) fails when they differ from the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from training.catalog import AGGREGATES, PLANNING_AGGREGATES, event_classes

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"


def openapi_document() -> dict[str, Any]:
    from training.app import create_app
    from training.core.http.openapi import document_of

    return document_of(create_app(None))


def event_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, one per event type, keyed by its pinned topic."""
    schemas: dict[str, dict[str, Any]] = {}
    for aggregate in (*AGGREGATES, *PLANNING_AGGREGATES):
        for cls in event_classes(aggregate):
            topic = str(cls.TOPIC)
            schema = msgspec.json.schema(cls)
            schema["$id"] = f"urn:training:event:{topic}"
            schema["x-topic"] = topic
            schema["x-class-version"] = getattr(cls, "class_version", 1)
            schemas[topic.replace(":", ".") + ".json"] = schema
    return schemas


def rendered() -> dict[str, str]:
    """Relative path -> file content, exactly as written to disk."""
    files = {"openapi.json": _dump(openapi_document())}
    for name, schema in event_schemas().items():
        files[f"events/{name}"] = _dump(schema)
    return files


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write(directory: Path = CONTRACTS_DIR) -> list[str]:
    files = rendered()
    (directory / "events").mkdir(parents=True, exist_ok=True)
    for stale in (directory / "events").glob("*.json"):
        if f"events/{stale.name}" not in files:
            stale.unlink()
    for relative, content in files.items():
        (directory / relative).write_text(content)
    return sorted(files)


def differences(directory: Path = CONTRACTS_DIR) -> list[str]:
    """What differs between the code and the files; empty when they agree."""
    files = rendered()
    problems = []
    for relative, content in files.items():
        path = directory / relative
        if not path.exists():
            problems.append(f"missing: contracts/{relative}")
        elif path.read_text() != content:
            problems.append(f"differs: contracts/{relative}")
    for path in (directory / "events").glob("*.json"):
        if f"events/{path.name}" not in files:
            problems.append(f"no longer generated: contracts/events/{path.name}")
    return problems
