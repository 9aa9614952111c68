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

/*
 * Runs a job in batches, each batch a transaction of its own, as many as
 * fit in budget_ms, in one call (CALL, outside any transaction block, so
 * that it may commit): one round trip for many batches, and nothing between
 * a batch's lock and its commit but the batch's own work. A job works in
 * batches when it returns "next": it is called again with "after" set to
 * it, and "batch", the number of items asked, which adapts so that each
 * batch holds its locks about target_ms whatever the machine's load: halved
 * after a slower batch, doubled after one three times faster (1 to 1000).
 * A job that returns no "next" runs once. Returns its results (integers
 * summed over the batches), its "log" lines with one debug line per batch,
 * "batches", and, when budget_ms ran out first, "next" and "batch" to call
 * it again with; NULL when another daemon holds the job.
 */
CREATE PROCEDURE api.run_job_batches(name text, ctx jsonb, budget_ms integer,
                                     target_ms integer, INOUT result json DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := clock_timestamp();
    began timestamptz;
    took_ms numeric;
    size integer := greatest(coalesce((ctx->>'batch')::integer, 10), 1);
    one jsonb;
    counts jsonb;
    total jsonb := '{}';
    lines jsonb := '[]';
    batches integer := 0;
    key text;
    value jsonb;
BEGIN
    result := NULL;
    LOOP
        began := clock_timestamp();
        one := api.run_job(name, ctx || jsonb_build_object('batch', size))::jsonb;
        COMMIT;
        took_ms := round(extract(epoch FROM clock_timestamp() - began) * 1000, 1);
        EXIT WHEN one IS NULL; -- another daemon runs it
        batches := batches + 1;
        counts := one - 'log' - 'next';
        lines := lines || coalesce(one->'log', '[]')
                 || jsonb_build_array(jsonb_build_object(
                        'level', 'debug',
                        'message', format('job %s: batch %s of %s in %s ms %s', name, batches,
                                          size, took_ms, counts)));
        FOR key, value IN SELECT * FROM jsonb_each(counts) LOOP
            total := total || jsonb_build_object(key,
                CASE WHEN jsonb_typeof(value) = 'number' AND jsonb_typeof(total->key) = 'number'
                     THEN to_jsonb((total->>key)::numeric + (value #>> '{}')::numeric)
                     ELSE value END);
        END LOOP;
        EXIT WHEN one->'next' IS NULL;
        ctx := ctx || jsonb_build_object('after', one->'next');
        IF took_ms > target_ms THEN
            size := greatest(size / 2, 1);
        ELSIF took_ms < target_ms / 3.0 THEN
            size := least(size * 2, 1000);
        END IF;
        IF clock_timestamp() - started >= make_interval(secs => budget_ms / 1000.0) THEN
            total := total || jsonb_build_object('next', ctx->'after', 'batch', size);
            EXIT;
        END IF;
    END LOOP;
    IF batches > 0 THEN
        result := (total || jsonb_build_object('batches', batches, 'log', lines))::json;
    END IF;
END;
$$;
