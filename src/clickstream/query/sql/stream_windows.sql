-- One row per tumbling event-time window (--window, UTC) from the stream: page views, exact distinct
-- visitors, sessions started (30-minute rule of the sessions view), top 5 pages and sources. Windows
-- are revised when late events arrive, never dropped; is_final: the watermark (newest event time) is
-- past window_end + lateness. Batches write partial rows; this view merges them exactly.
WITH users AS (
  SELECT consumer_group, window_start, anonymous_user_id,
         min(first_time) AS first_time, max(last_time) AS last_time, sum(pageviews) AS pageviews
  FROM stream_facts WHERE kind = 'window_user'
  GROUP BY consumer_group, window_start, anonymous_user_id
), starts AS (
  SELECT *, lag(last_time) OVER (PARTITION BY consumer_group, anonymous_user_id
                                 ORDER BY window_start) AS prev_time
  FROM users
), windows AS (
  SELECT consumer_group, window_start, sum(pageviews) AS pageviews, count(*) AS visitors,
         count(*) FILTER (WHERE prev_time IS NULL
                          OR first_time > prev_time + INTERVAL 30 MINUTE) AS sessions_started
  FROM starts GROUP BY consumer_group, window_start
), pages AS (
  SELECT consumer_group, window_start, url_path, sum(pageviews) AS pageviews
  FROM stream_facts WHERE kind = 'window_page' GROUP BY consumer_group, window_start, url_path
), top_pages AS (
  SELECT consumer_group, window_start,
         list(struct_pack(url_path, pageviews) ORDER BY pageviews DESC, url_path)[1:5] AS top_pages
  FROM pages GROUP BY consumer_group, window_start
), sources AS (
  SELECT consumer_group, window_start, utm_source, utm_medium, sum(pageviews) AS pageviews
  FROM stream_facts WHERE kind = 'window_source'
  GROUP BY consumer_group, window_start, utm_source, utm_medium
), top_sources AS (
  SELECT consumer_group, window_start,
         list(struct_pack(utm_source, utm_medium, pageviews)
              ORDER BY pageviews DESC, utm_source NULLS FIRST, utm_medium NULLS FIRST)[1:5] AS top_sources
  FROM sources GROUP BY consumer_group, window_start
), late AS (
  SELECT consumer_group, window_start, count(*) AS late_events
  FROM stream_facts WHERE kind = 'late' GROUP BY consumer_group, window_start
), settings AS (
  SELECT consumer_group, max(window_seconds) AS window_seconds,
         max(lateness_seconds) AS lateness_seconds, max(max_event_time) AS watermark
  FROM stream_facts WHERE kind = 'batch' GROUP BY consumer_group
)
SELECT w.consumer_group, w.window_start,
       w.window_start + to_seconds(s.window_seconds) AS window_end,
       w.pageviews, w.visitors, w.sessions_started, p.top_pages, src.top_sources,
       coalesce(l.late_events, 0) AS late_events,
       w.window_start + to_seconds(s.window_seconds + s.lateness_seconds) <= s.watermark AS is_final
FROM windows w
JOIN settings s USING (consumer_group)
LEFT JOIN top_pages p USING (consumer_group, window_start)
LEFT JOIN top_sources src USING (consumer_group, window_start)
LEFT JOIN late l USING (consumer_group, window_start)
