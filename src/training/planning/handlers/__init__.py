"""The planning process and the commands on learning progress."""
