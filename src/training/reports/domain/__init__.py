"""Report requests and the effectiveness figures: pure."""
