-- TEMPORARY until the alerts outbox lands: payouts emit events through api.emit.
CREATE FUNCTION api.emit(ctx jsonb, type text, data json) RETURNS void
LANGUAGE sql AS $$
    SELECT
$$;
