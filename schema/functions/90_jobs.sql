-- Scheduled jobs. Each is one call of api.job_<name>(ctx); the daemon's
-- scheduler runs it under pg_try_advisory_xact_lock so that several daemons
-- on one database run it once. ctx carries "today" and "now" like a request.

-- Forgets idempotency keys older than 24 hours.
CREATE FUNCTION api.job_idempotency_cleanup(ctx jsonb) RETURNS json
LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM idempotency_keys
         WHERE created_at < (ctx->>'now')::timestamptz - interval '24 hours'
        RETURNING 1)
    SELECT json_build_object('deleted', count(*)) FROM gone
$$;

-- Runs api.job_<name>(ctx) if no other daemon is running it: returns its
-- result, or NULL when the lock was taken (the job is skipped here).
CREATE FUNCTION api.run_job(name text, ctx jsonb) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    result json;
BEGIN
    IF name !~ '^[a-z][a-z_]*$' OR to_regprocedure('api.job_' || name || '(jsonb)') IS NULL THEN
        RAISE EXCEPTION 'api.run_job: no job %', name;
    END IF;
    IF NOT pg_try_advisory_xact_lock(api.lock_key('job', name)) THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT api.%I($1)', 'job_' || name) INTO result USING ctx;
    RETURN coalesce(result, '{}'::json);
END;
$$;
