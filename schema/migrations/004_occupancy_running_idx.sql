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

-- The GiST index on (incubator_id, valid) stays: the monthly report finds the
-- intervals that overlap a month through it (dropping it made a snapshot a
-- fifth cheaper but the province's monthly report 1.6 times slower).
