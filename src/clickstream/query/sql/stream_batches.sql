-- One row per batch the stream consumers committed (`clickstream stream stats`): records read,
-- events counted, repeats dropped, late events, dead letters, event-time range, distinct visitors,
-- and timing (processing_seconds: read to commit; event_lag_seconds: commit time minus newest event).
SELECT consumer_group, batch_id, consumer, records, events, duplicates, late_events, dead_letters,
       min_event_time, max_event_time, unique_users, read_at, committed_at, processing_seconds,
       event_lag_seconds, len(offsets) AS offsets
FROM stream_facts
WHERE kind = 'batch'
