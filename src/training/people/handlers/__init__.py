"""Commands on members and teams, imports and exports."""
