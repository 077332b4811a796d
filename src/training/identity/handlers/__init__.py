"""Commands and directory lookups behind SSO and SCIM."""
