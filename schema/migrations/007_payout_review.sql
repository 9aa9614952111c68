-- 007: four eyes on payout runs. A run is reviewed by one admin token and
-- approved by another; each of computed_*, reviewed_* and approved_* is set by
-- its own action only (enforced by the API functions).

ALTER TABLE payout_runs
    ADD COLUMN reviewed_at timestamptz,
    ADD COLUMN reviewed_by text,
    ADD COLUMN review_note text,
    ADD CHECK ((reviewed_at IS NULL) = (reviewed_by IS NULL)),
    ADD CHECK (review_note IS NULL OR reviewed_at IS NOT NULL);
