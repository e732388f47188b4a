-- Stream records that could not be read as events (not JSON, wrong schema version, missing fields,
-- bad event_time), with the reason and the payload (cut to 2000 characters). Never counted.
SELECT consumer_group, stream_id, reason, payload, batch_id, consumer
FROM stream_facts
WHERE kind = 'dead_letter'
