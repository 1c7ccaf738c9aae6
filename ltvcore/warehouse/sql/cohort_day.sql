-- The cohort table: campaign x install date x day since install, with the users active, the
-- users paying and the revenue of that day. What a dashboard reads, and the check that the
-- warehouse agrees with the models' input (the forecast pools the same numbers by age).
-- {user_day}: user_id, event_date, revenue; {installs}: user_id, install_date, campaign.
SELECT
    i.campaign,
    i.install_date,
    date_diff('day', i.install_date, d.event_date) AS day,
    COUNT(*) AS active_users,
    SUM(CASE WHEN d.revenue > 0 THEN 1 ELSE 0 END) AS payers,
    SUM(d.revenue) AS revenue
FROM {user_day} AS d
JOIN {installs} AS i ON d.user_id = i.user_id
WHERE d.event_date <= DATE '{as_of}'
GROUP BY i.campaign, i.install_date, date_diff('day', i.install_date, d.event_date)
