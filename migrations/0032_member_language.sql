SET LOCAL ROLE training_owner;

-- The language a person chose to read the service in (Member.LanguageChosen); null: none
-- chosen, the browser's language applies.
ALTER TABLE training.members ADD COLUMN language text;
