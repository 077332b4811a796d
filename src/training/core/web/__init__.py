"""What every page of the web app shares: the layout, the language, the security headers,
CSRF protection and error pages. Each context's pages live in its own ``web.py``, with their
templates beside it, and call the same handlers and queries as the API."""
