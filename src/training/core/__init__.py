"""What every context shares: the aggregate base and errors, the event-sourced application, the
command bus with its unit of work, access rules, the read store and view base, pagination.
"""
