-- An automatic report still queued when a newer plan of the same member has its own report
-- is not rendered: it is superseded (a curriculum release followed by a review would
-- otherwise render two reports per person, the first of which nobody reads).
ALTER TABLE training.reports DROP CONSTRAINT reports_status_check;
ALTER TABLE training.reports ADD CONSTRAINT reports_status_check
    CHECK (status IN ('queued', 'rendered', 'failed', 'superseded'));
