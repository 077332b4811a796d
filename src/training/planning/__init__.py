"""Personal training tracks: the planner, the planning process that re-plans them, and learning
progress.
"""
