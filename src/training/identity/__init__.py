"""Who is calling: OAuth client credentials and signing keys, single sign-on (OIDC) and SCIM
provisioning.
"""
