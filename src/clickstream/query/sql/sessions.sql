-- One row per visit. A new session starts when more than 30 minutes passed since the same
-- visitor's previous page view (exactly 30 minutes stays in the session, as in GA / Snowplow).
-- Sessions may span partitions. Ties in time are broken by event_id, so results are stable.
-- session_id is the event_id of the session's first page view; durations are exact (microseconds).
-- arg_min skips NULL arguments on DuckDB but not on Spark/Trino, so NULL UTMs travel as ''
-- (never a real value: the contract turns empty UTMs into NULL).
WITH ordered AS (
  SELECT anonymous_user_id, event_id, event_time, url_path, utm_source, utm_medium, utm_campaign,
         lag(event_time) OVER (PARTITION BY anonymous_user_id ORDER BY event_time, event_id) AS prev_time
  FROM clickstream
), numbered AS (
  SELECT *,
         sum(CASE WHEN prev_time IS NULL OR event_time > prev_time + INTERVAL 30 MINUTE THEN 1 ELSE 0 END)
           OVER (PARTITION BY anonymous_user_id ORDER BY event_time, event_id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS session_number
  FROM ordered
)
SELECT
  arg_min(event_id, struct_pack(t := event_time, id := event_id)) AS session_id,
  anonymous_user_id,
  min(event_time) AS session_start,
  max(event_time) AS session_end,
  CAST(date_diff('microsecond', min(event_time), max(event_time)) AS DOUBLE) / 1000000 AS duration_seconds,
  count(*) AS pageviews,
  arg_min(url_path, struct_pack(t := event_time, id := event_id)) AS landing_path,
  arg_max(url_path, struct_pack(t := event_time, id := event_id)) AS exit_path,
  nullif(arg_min(coalesce(utm_source, ''), struct_pack(t := event_time, id := event_id)), '') AS utm_source,
  nullif(arg_min(coalesce(utm_medium, ''), struct_pack(t := event_time, id := event_id)), '') AS utm_medium,
  nullif(arg_min(coalesce(utm_campaign, ''), struct_pack(t := event_time, id := event_id)), '') AS utm_campaign,
  count(*) = 1 AS is_bounce
FROM numbered
GROUP BY anonymous_user_id, session_number
