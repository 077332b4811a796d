"""The commands on learning progress (the planning process itself is ``planning.process``)."""
