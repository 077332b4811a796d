"""The platform operator's token, on every operation of the OpenAPI, reveals none of a tenant's
people: no name, external id, member id, report, import, review or cohort of theirs, and no
PDF. The operator manages tenants and their API clients and keeps the catalogue; the tenant's
own data is reached with the tenant's credentials only (the database backs this up: platform
sessions see no tenant's rows, see ``tests/integration/test_rls.py``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.test_isolation_matrix import World, call, operations
from tests.helpers import bearer
from training.bootstrap import Services

DENIED = {401, 403, 404}


class Reported(World):
    """Tenant A of the isolation matrix, with a rendered cohort report that names its roster."""

    def __init__(self, client: TestClient[Any], services: Services) -> None:
        super().__init__(client, services)
        asked = self.a.client.post(
            "/v1/reports",
            json={"kind": "cohort", "subject_id": self.values["cohort_id"]},
            headers=self.a.headers(),
        )
        assert asked.status_code == 202, asked.text
        self.report_id = str(asked.json()["report_id"])
        deadline = time.monotonic() + 120
        while True:
            report = self.a.client.get(f"/v1/reports/{self.report_id}", headers=self.a.headers())
            if report.status_code == 200 and report.json()["status"] == "rendered":
                break
            assert time.monotonic() < deadline, report.text
            time.sleep(0.2)
        pdf = self.a.client.get(f"/v1/reports/{self.report_id}/pdf", headers=self.a.headers())
        assert pdf.status_code == 200
        self.values["report_id"] = self.report_id
        # The tenant itself (its id, slug, name) is the operator's to see; its people are not.
        self.people_markers = (self.markers - {str(self.a.tenant_id)}) | {self.report_id}


@pytest.fixture(scope="module")
def reported(client: TestClient[Any], services: Services) -> Reported:
    return Reported(client, services)


@pytest.mark.parametrize(("method", "path", "operation"), operations())
def test_the_operator_sees_none_of_a_tenants_people(
    reported: Reported, operator_token: str, method: str, path: str, operation: str
) -> None:
    url = reported.url(path, operation)
    response = call(reported.a.client, method, url, bearer(operator_token))
    assert response.status_code < 500, (operation, response.text)
    leaked = [m for m in reported.people_markers if m in response.text and m not in url]
    assert leaked == [], f"{operation} answered {response.status_code} with {leaked}"
    names_a_tenant_resource = any(
        "{" + name in path for name in ("member_id", "report_id", "import_id", "review_id")
    )
    if names_a_tenant_resource:
        assert response.status_code in DENIED, (operation, response.status_code)
    assert not response.headers.get("content-type", "").startswith("application/pdf")


def test_the_operator_reads_the_platform(reported: Reported, operator_token: str) -> None:
    """The sweep above is not vacuous: the operator's own operations answer."""
    client = reported.a.client
    listed = client.get("/v1/tenants", params={"limit": 200}, headers=bearer(operator_token))
    assert listed.status_code == 200
    tenant_id = str(reported.a.tenant_id)
    assert client.get(f"/v1/tenants/{tenant_id}", headers=bearer(operator_token)).is_success
    clients = client.get(f"/v1/tenants/{tenant_id}/clients", headers=bearer(operator_token))
    assert clients.status_code == 200
    assert clients.json()["items"]
    for url in (f"/v1/reports/{reported.report_id}/pdf", f"/v1/members/{reported.hr_id}"):
        assert client.get(url, headers=bearer(operator_token)).status_code in DENIED
