-- Events that arrived more than --lateness behind the newest event time seen (the watermark). They
-- are still counted in their window (which is revised); this lists them so nothing changes silently.
SELECT consumer_group, event_id, anonymous_user_id, event_time, window_start, watermark,
       date_diff('microsecond', event_time, watermark) / 1e6 AS seconds_behind, stream_id, batch_id
FROM stream_facts
WHERE kind = 'late'
