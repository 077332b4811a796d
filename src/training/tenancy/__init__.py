"""Tenants, their settings and their API clients."""
