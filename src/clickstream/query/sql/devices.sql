-- Browser, OS and screen size mix.
SELECT browser, os, screen_width, screen_height,
       count(*) AS pageviews, count(DISTINCT anonymous_user_id) AS unique_users
FROM clickstream
GROUP BY browser, os, screen_width, screen_height
