-- 004: finding the occupancy intervals of one incubator that run through a
-- recent day (what a snapshot changes; the share of today) without visiting
-- the incubator's whole history.
--
-- The GiST index on (incubator_id, valid) cannot prune by day once open
-- intervals [d, infinity) widen its keys, and the planner preferred the
-- exclusion constraint's index anyway, scanning every incubator's intervals
-- that contain the day (12 ms per snapshot at 200 incubators x 450
-- intervals). Intervals through day d are those that start on or before d and
-- end after it; for a recent d, those that end after it are few, and a btree
-- on the end (open = infinity) finds them directly (0.1 ms).
CREATE INDEX occupancy_incubator_upper_idx
    ON occupancy (incubator_id, (coalesce(upper(valid), 'infinity'::date)));

-- No query uses the GiST index any more, while every interval written paid
-- for it: inserting into it took a fifth of a snapshot's time, and its
-- parent keys, widened by open intervals, made concurrent writers of
-- different incubators wait on the same pages. The exclusion constraint's
-- index still finds a tenant's intervals by day.
DROP INDEX occupancy_incubator_valid_idx;
