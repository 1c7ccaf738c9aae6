-- Events summed per user and day: the finest grain any model needs.
-- One home for the daily aggregate: `ltv warehouse refresh` runs it on DuckDB for each new or
-- changed date, the AWS daily workflow runs the same text on Athena (Trino) for new dates only.
-- {events}: a relation with user_id, event_date (DATE), revenue (DOUBLE).
SELECT
    user_id,
    SUM(revenue) AS revenue,
    COUNT(*) AS events,
    event_date
FROM {events}
WHERE event_date BETWEEN DATE '{first}' AND DATE '{last}'
GROUP BY user_id, event_date
