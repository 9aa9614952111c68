-- 012: closing an incubator (POST /v1/incubators/{code}/close), and the day
-- an incubator was registered, from which stale_data counts when it has sent
-- no snapshot yet.

ALTER TABLE incubators
    -- The bureau's date of registration; NULL for incubators registered before
    -- this column existed (stale_data then counts from opened_on, as it did).
    ADD COLUMN registered_on date,
    -- The day it closed: from then on it takes no writes, its tokens fail, it
    -- raises no alert, and it has no share after that day.
    ADD COLUMN closed_on date,
    ADD COLUMN close_reason text CHECK (length(close_reason) BETWEEN 1 AND 500),
    ADD CONSTRAINT incubators_closed_after_opening CHECK (closed_on >= opened_on),
    ADD CONSTRAINT incubators_close_reason_given CHECK ((closed_on IS NULL) = (close_reason IS NULL));

-- Its incubating tenants exit with their own reason when an incubator closes.
ALTER TABLE tenants
    DROP CONSTRAINT tenants_exit_reason_check,
    ADD CONSTRAINT tenants_exit_reason_check
        CHECK (exit_reason IN ('relocated', 'closed', 'expelled', 'other', 'incubator_closed'));
