"""The skill framework and role profiles."""
