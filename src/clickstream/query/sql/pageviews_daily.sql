-- Page views and distinct visitors per UTC day.
SELECT event_date, count(*) AS pageviews, count(DISTINCT anonymous_user_id) AS unique_users
FROM clickstream
GROUP BY event_date
