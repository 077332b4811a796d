SET LOCAL ROLE training_owner;

-- The position of an import's last batch that wrote members (ADR 0007): a client reading
-- the members at it (Training-Position) sees every member the import wrote.
ALTER TABLE training.member_imports ADD COLUMN position bigint;
