-- The stream's windows rolled up to hours: page views and sessions started (sums), exact visitors
-- (from the per-window visitor rows, not the events) and the windows' HLL sketches (Apache
-- DataSketches, serialize_compact) for any client to merge: `clickstream stream rollup` does.
WITH users AS (
  SELECT consumer_group, time_bucket(INTERVAL 1 HOUR, window_start) AS hour_start,
         count(DISTINCT anonymous_user_id) AS visitors
  FROM stream_facts WHERE kind = 'window_user' GROUP BY ALL
), sketches AS (
  SELECT consumer_group, time_bucket(INTERVAL 1 HOUR, window_start) AS hour_start,
         list(sketch) AS visitor_sketches
  FROM stream_facts WHERE kind = 'window_sketch' GROUP BY ALL
), windows AS (
  SELECT consumer_group, time_bucket(INTERVAL 1 HOUR, window_start) AS hour_start,
         sum(pageviews) AS pageviews, sum(sessions_started) AS sessions_started, count(*) AS windows
  FROM stream_windows GROUP BY ALL
)
SELECT consumer_group, hour_start, hour_start + INTERVAL 1 HOUR AS hour_end, pageviews, visitors,
       sessions_started, windows, visitor_sketches
FROM windows JOIN users USING (consumer_group, hour_start)
LEFT JOIN sketches USING (consumer_group, hour_start)
