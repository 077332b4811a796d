"""Members of a tenant, their teams, CSV imports and exports."""
