"""SCIM 2.0 provisioning (RFC 7643/7644) at ``/scim/v2/{tenant_id}/``.

scim2-server does the protocol: routing, request validation, PATCH and PUT semantics,
filters, sorting, paging, ``attributes``/``excludedAttributes``, conditional requests
(``If-Match`` → 412) and discovery. This package gives it a storage (``storage``) whose
Users (``users``) are the tenant's members and whose Groups (``groups``) are its teams or
cohorts; it writes only through the command bus (``training.identity.handlers.scim`` decides
which commands).

Every tenant has its own URL prefix (``mount``). The mount authenticates each request itself
(``call``), so its errors are SCIM errors (RFC 7644 §3.12, ``protocol``) rather than problem
documents: the bearer token must be an access token of an API client of the tenant in the
URL, holding the scope ``scim``.

Groups are listed teams (``TRAINING_SCIM_GROUPS=teams``, the default: ``Teams``, members by
team name) or cohorts (``cohorts``: members are the enrolled, added ones are enrolled and
removed ones withdrawn), as ``discovery`` announces. SCIM requests share the API's
rate-limit buckets (ADR 0015).
"""

from __future__ import annotations

from typing import Any

from training.identity.http.scim.mount import scim_mount

ROUTES: list[Any] = [scim_mount]
