"""The pure model: aggregates, events, value objects and rules.

Nothing in this package performs I/O or imports from the application, projections, api,
reports or infra packages; a test in tests/unit/test_layers.py keeps it so.
"""
