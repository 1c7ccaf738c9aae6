-- Without an installs table a user's install date is their first event, and their campaign is
-- `all`. (A user whose first event is after as-of has not installed by then, the same rule as
-- an installs row dated after as-of.)
SELECT
    user_id,
    MIN(event_date) AS install_date,
    'all' AS campaign
FROM {user_day}
GROUP BY user_id
