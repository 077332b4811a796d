"""PDF reports: requests, the queue and its worker, and the documents."""
