"""What the SCIM service announces: what Groups are, the schemas it publishes, its features.

Discovery (``/ServiceProviderConfig``, ``/Schemas``, ``/ResourceTypes``) is answered by
scim2-server from the provider made here.
"""

from __future__ import annotations

from enum import StrEnum

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    Filter,
    Mutability,
    Patch,
    Required,
    Returned,
    Schema,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
)
from scim2_server.utils import load_default_resource_types, load_default_schemas

from training.identity.http.scim.protocol import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    USER_SCHEMA,
)

# The setting that says what SCIM Groups are (``Settings.scim_groups``).
GROUPS_SETTING = "TRAINING_SCIM_GROUPS"
# The most resources one page of a search returns (also the page size when none is asked).
MAX_RESULTS = 200


class GroupMapping(StrEnum):
    TEAMS = "teams"
    COHORTS = "cohorts"


# -- What the service announces ---------------------------------------------------------------

# Only the attributes a member really keeps are published, so a client (and scim2-tester)
# never writes a value that would silently vanish. Other attributes a client sends, such as
# phoneNumbers or name.givenName, are ignored (ScimPolicy.Unknown.ignore), as the identity
# providers expect.
USER_ATTRIBUTES: dict[str, tuple[set[str] | None, str]] = {
    "userName": (None, "The member's email address (unique in the tenant)."),
    "name": (
        {"formatted"},
        "Another way to send the display name (name.formatted); the service keeps one display "
        "name and returns it as displayName only.",
    ),
    "displayName": (
        None,
        "The member's display name; absent when it is the default, the email. Removing it "
        "brings the default back.",
    ),
    "title": (None, "The member's job title."),
    "active": (
        None,
        "Whether the member is active (false deactivates and frees a seat). A member always "
        "has a status, so it is required.",
    ),
}
ENTERPRISE_ATTRIBUTES: dict[str, tuple[set[str] | None, str]] = {
    "department": (None, "The member's team."),
    "manager": ({"value", "$ref"}, "The member's manager: value is the manager's id."),
}
GROUP_ATTRIBUTES: dict[str, tuple[set[str] | None, str]] = {
    "displayName": (None, "The team's name (unique in the tenant); it may change, the id stays."),
    "members": ({"value", "$ref", "type"}, "The members whose team this is."),
}

POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


def _published(schema: Schema, attributes: dict[str, tuple[set[str] | None, str]]) -> Schema:
    """``schema`` with only ``attributes`` (and their sub-attributes), described as here."""
    published = schema.model_copy(deep=True)
    kept = [a for a in published.attributes or [] if a.name in attributes]
    for attribute in kept:
        sub_attributes, description = attributes[str(attribute.name)]
        attribute.description = description
        if sub_attributes is not None:
            attribute.sub_attributes = [
                s for s in attribute.sub_attributes or [] if s.name in sub_attributes
            ]
        if attribute.name == "members":
            for sub in attribute.sub_attributes or []:
                if sub.name == "$ref":
                    sub.reference_types = ["User"]  # teams do not nest
                if sub.name == "type":
                    sub.canonical_values = ["User"]
        if attribute.name == "name":
            # Accepted, never returned: one display name, shown as displayName.
            attribute.mutability = Mutability.write_only
            attribute.returned = Returned.never
        if attribute.name == "active":
            attribute.required = Required.true
    published.attributes = kept
    return published


def scim_provider(mapping: GroupMapping) -> ScimProvider:
    """What scim2-server serves and validates against, with Groups as ``mapping`` says."""
    schemas = load_default_schemas()
    published = [
        _published(schemas[USER_SCHEMA], USER_ATTRIBUTES),
        _published(schemas[ENTERPRISE_USER_SCHEMA], ENTERPRISE_ATTRIBUTES),
    ]
    resource_types = [load_default_resource_types()["User"]]
    published.append(_published(schemas[GROUP_SCHEMA], GROUP_ATTRIBUTES))
    group = load_default_resource_types()["Group"]
    group.description = (
        "A team: the members whose team it is"
        if mapping is GroupMapping.TEAMS
        else "A cohort: its enrolled members (cohorts are scheduled in the service)"
    )
    resource_types.append(group)
    config = ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="OAuth Bearer Token",
                description="An access token (POST /oauth2/token, client credentials) of an "
                "API client of this tenant that holds the scope 'scim'.",
                primary=True,
            )
        ],
    )
    return ScimProvider.from_discovery(published, resource_types, config=config, policy=POLICY)
