"""The audit log: every event of a tenant, who caused it and when."""
