"""The HTTP conventions every context follows: problems, bodies, parameter types, idempotency, the
principal and its guards.
"""
