"""What the operator runs on the read models: rebuild a view from the event log, or re-apply
the events a view or the planning process held back (ADR 0026)."""
