-- Where visits come from: UTM source / medium / campaign (NULL = none given).
SELECT utm_source, utm_medium, utm_campaign,
       count(*) AS pageviews, count(DISTINCT anonymous_user_id) AS unique_users
FROM clickstream
GROUP BY utm_source, utm_medium, utm_campaign
