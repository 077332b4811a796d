"""Schemas that two modules declare under one name keep the names clients already know."""

from __future__ import annotations

import pytest

from training.core.http.openapi import resource_key


@pytest.mark.parametrize(
    ("generated", "published"),
    [
        ("skills_http_TargetIn", "skills_TargetIn"),
        ("curricula_views_TargetRecord", "curricula_TargetRecord"),
        # The resource module inside a context's http package names it.
        ("cohorts_http_cohorts_ProgressIn", "cohorts_ProgressIn"),
        # Planning's track routes were published as "tracks".
        ("planning_http_ProgressIn", "tracks_ProgressIn"),
        # Names without a module path, or with one that has no role in it, are left alone.
        ("Problem", "Problem"),
        ("TenantOut", "TenantOut"),
        ("people_ReportPage", "people_ReportPage"),
    ],
)
def test_a_colliding_schema_is_named_by_its_resource(generated: str, published: str) -> None:
    assert resource_key(generated) == published
