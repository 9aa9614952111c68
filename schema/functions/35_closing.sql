-- Closing an incubator: POST /v1/incubators/{code}/close.

/*
 * Closes an incubator on closed_on (admin). On that day its occupancy ends
 * and its incubating tenants exit with reason incubator_closed; its area
 * histories end after it, so it has no share (no_data) from the next day on
 * and no data in later months. From the call on, every write to it is a 409
 * (api.incubator_writable), its tokens fail (api.token_lookup; the caches
 * hear it by NOTIFY), and it raises no alert (api.alert_observations leaves
 * it out), so its open alerts resolve here. Its history stays as it was.
 */
CREATE FUNCTION api.incubator_close(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    inc incubators;
    closing date := (args->>'closed_on')::date;
    latest date;
    late text;
    codes text[];
    exited integer;
BEGIN
    SELECT * INTO inc FROM incubators WHERE code = args->>'code' FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM api.fail(404, format('no incubator %s', args->>'code'));
    END IF;
    IF inc.closed_on IS NOT NULL THEN
        PERFORM api.fail(409, format('incubator %s already closed on %s', inc.code,
                                     inc.closed_on));
    END IF;
    IF closing < inc.opened_on THEN
        PERFORM api.fail_field('closed_on', format('must not be before the incubator opened (%s)',
                                                   inc.opened_on));
    END IF;
    PERFORM api.check_not_frozen('closed_on', closing);

    -- What was recorded after the closing day would contradict it.
    SELECT max(s.as_of) INTO latest FROM snapshots s WHERE s.incubator_id = inc.id;
    IF latest > closing THEN
        PERFORM api.fail(409, format('closed_on %s is before %s, the latest snapshot of %s',
                                     closing, latest, inc.code));
    END IF;
    SELECT format('tenant %s was %s on %s', t.external_id, e.what, e.day) INTO late
      FROM tenants t
     CROSS JOIN LATERAL (VALUES ('admitted', t.admitted_on), ('graduated', t.graduated_on),
                                ('exited', t.exited_on)) e(what, day)
     WHERE t.incubator_id = inc.id AND e.day > closing
     ORDER BY e.day DESC, t.external_id
     LIMIT 1;
    IF late IS NOT NULL THEN
        PERFORM api.fail(409, format('closed_on %s is before what is recorded: %s',
                                     closing, late));
    END IF;

    UPDATE incubators SET closed_on = closing, close_reason = args->>'reason', updated_at = now()
     WHERE id = inc.id
    RETURNING * INTO inc;

    SELECT coalesce(array_agg(t.credit_code), '{}') INTO codes
      FROM tenants t WHERE t.incubator_id = inc.id AND t.status = 'incubating';
    UPDATE tenants SET status = 'exited', exited_on = closing, exit_reason = 'incubator_closed',
                       updated_at = now()
     WHERE incubator_id = inc.id AND status = 'incubating';
    GET DIAGNOSTICS exited = ROW_COUNT;

    -- Nobody occupies anything from the closing day on (graduates included).
    DELETE FROM occupancy WHERE incubator_id = inc.id AND lower(valid) >= closing;
    UPDATE occupancy SET valid = daterange(lower(valid), closing)
     WHERE incubator_id = inc.id AND valid @> closing;
    -- Its areas end with the closing day: no share, no data after it.
    PERFORM api.cut_history('incubator_areas', inc.id, closing + 1);
    PERFORM api.cut_history('public_service_areas', inc.id, closing + 1);

    -- Every daemon forgets the incubator's tokens it has cached.
    PERFORM pg_notify('incubatord_tokens', t.id::text)
       FROM tokens t WHERE t.incubator_id = inc.id AND t.revoked_at IS NULL;

    PERFORM api.audit(ctx, inc.id,
                      format('closed incubator %s on %s (%s tenants exited)', inc.code, closing,
                             exited),
                      (args - 'code') || jsonb_build_object('tenants_exited', exited));
    PERFORM api.after_change(ctx, ARRAY[inc.id] || api.incubators_with_code(codes));
    RETURN api.ok(200, api.incubator_json(inc, api.today(ctx)));
END;
$$;
