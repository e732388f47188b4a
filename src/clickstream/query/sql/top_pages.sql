-- The most viewed pages (host + path, query and fragment ignored).
SELECT url_host, url_path, count(*) AS pageviews, count(DISTINCT anonymous_user_id) AS unique_users
FROM clickstream
GROUP BY url_host, url_path
