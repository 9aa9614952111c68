-- 011: the city's plan targets (科技创业三年行动计划 工作目标) as a resource of
-- their own, so that changing a target does not issue a new reward policy.
-- The plans the policy versions carried become plans, named after their
-- window's years (the seed's 2015-2017 plan from version 1).

CREATE TABLE plans (
    id           text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$'),
    window_from  date NOT NULL,
    window_to    date NOT NULL CHECK (window_to >= window_from),
    targets      jsonb NOT NULL CHECK (jsonb_typeof(targets) = 'object'),
    created_at   timestamptz NOT NULL,
    created_by   text NOT NULL,
    updated_at   timestamptz NOT NULL,
    updated_by   text NOT NULL
);

INSERT INTO plans (id, window_from, window_to, targets, created_at, created_by, updated_at,
                   updated_by)
SELECT DISTINCT ON (id) id, window_from, window_to, targets, now(), 'migration', now(),
       'migration'
  FROM (SELECT extract(year FROM (plan->>'from')::date) || '-'
               || extract(year FROM (plan->>'to')::date) AS id,
               (plan->>'from')::date AS window_from, (plan->>'to')::date AS window_to,
               plan->'targets' AS targets, version
          FROM policies) p
 ORDER BY id, version DESC;
