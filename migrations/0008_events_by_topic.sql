SET LOCAL ROLE training_owner;

-- Each projection follows a few topics and reads "events of these topics after my position".
-- A projection whose topics are rare only moves its position when one of them arrives, so
-- without this index every read scanned the events table from that position onwards: the
-- cost of each new event grew with the size of the store. With it, the read is an index
-- range per topic.
CREATE INDEX training_events_topic_notification_id
    ON training.training_events (topic, notification_id);
