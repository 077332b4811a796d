"""An event-sourced B2B training service for software engineers."""

__version__ = "0.1.0"
