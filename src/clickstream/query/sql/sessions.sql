-- One row per visit. A new session starts when more than 30 minutes passed since the same
-- visitor's previous page view (exactly 30 minutes stays in the session, as in GA / Snowplow).
-- Sessions may span partitions. Ties in time are broken by event_id, so results are stable.
-- session_id is the event_id of the session's first page view; durations are exact (microseconds).
WITH ordered AS (
  SELECT anonymous_user_id, event_id, event_time, url_path, utm_source, utm_medium, utm_campaign,
         lag(event_time) OVER (PARTITION BY anonymous_user_id ORDER BY event_time, event_id) AS prev_time
  FROM clickstream
), flagged AS (
  SELECT *,
         CASE WHEN prev_time IS NULL OR event_time > prev_time + INTERVAL 30 MINUTE THEN 1 ELSE 0 END AS is_new
  FROM ordered
), numbered AS (
  SELECT *,
         sum(is_new) OVER (PARTITION BY anonymous_user_id ORDER BY event_time, event_id
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS session_number
  FROM flagged
), positioned AS (
  SELECT *,
         row_number() OVER (PARTITION BY anonymous_user_id, session_number ORDER BY event_time, event_id) AS pos,
         row_number() OVER (PARTITION BY anonymous_user_id, session_number ORDER BY event_time DESC, event_id DESC) AS pos_from_end
  FROM numbered
)
SELECT
  max(CASE WHEN pos = 1 THEN event_id END) AS session_id,
  anonymous_user_id,
  min(event_time) AS session_start,
  max(event_time) AS session_end,
  CAST(date_diff('microsecond', min(event_time), max(event_time)) AS DOUBLE) / 1000000 AS duration_seconds,
  count(*) AS pageviews,
  max(CASE WHEN pos = 1 THEN url_path END) AS landing_path,
  max(CASE WHEN pos_from_end = 1 THEN url_path END) AS exit_path,
  max(CASE WHEN pos = 1 THEN utm_source END) AS utm_source,
  max(CASE WHEN pos = 1 THEN utm_medium END) AS utm_medium,
  max(CASE WHEN pos = 1 THEN utm_campaign END) AS utm_campaign,
  count(*) = 1 AS is_bounce
FROM positioned
GROUP BY anonymous_user_id, session_number
