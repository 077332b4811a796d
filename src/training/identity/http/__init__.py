"""The token endpoint, the SSO code flow and the SCIM API."""
