-- Alerts. Until the alert rules exist, a change notifies nobody.

-- Called by every write that can change an alert rule's outcome, in the
-- write's transaction, with the incubators it may have affected.
CREATE FUNCTION api.after_change(ctx jsonb, incubators bigint[]) RETURNS void
LANGUAGE sql AS $$
    SELECT
$$;
