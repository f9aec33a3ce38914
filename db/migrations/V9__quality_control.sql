-- Quality control: gold standards mixed into queues, consistency rules that raise review hints, and the settings
-- the agreement metrics use. The materialized views over all of it are in V10.

ALTER TABLE core.project
    ADD COLUMN agreement_min_shared integer NOT NULL DEFAULT 10 CHECK (agreement_min_shared BETWEEN 1 AND 100000),
    ADD COLUMN fast_submit_ratio numeric NOT NULL DEFAULT 0.25 CHECK (fast_submit_ratio > 0 AND fast_submit_ratio < 1);
COMMENT ON COLUMN core.project.agreement_min_shared IS
    'Annotator pairs sharing fewer images than this are marked insufficient in metrics.agreement_pair.';
COMMENT ON COLUMN core.project.fast_submit_ratio IS
    'A submit faster than this share of the annotator''s median active time raises a fast_submit review hint.';

-- Gold standard: an approved image whose final annotation is the reference.
CREATE TABLE core.gold_standard (
    image_id     bigint PRIMARY KEY REFERENCES core.image (id),
    project_id   bigint NOT NULL REFERENCES core.project (id),
    revision_id  bigint NOT NULL REFERENCES core.annotation_revision (id),
    class_id     bigint NOT NULL REFERENCES core.taxonomy_node (id),
    content      jsonb NOT NULL,
    marked_by    bigint NOT NULL REFERENCES auth."user" (id),
    marked_at    timestamptz NOT NULL DEFAULT now(),
    active       boolean NOT NULL DEFAULT true
);
CREATE INDEX gold_standard_project_idx ON core.gold_standard (project_id) WHERE active;
COMMENT ON TABLE core.gold_standard IS 'Reference annotations of approved images, used to measure annotators.';

-- A gold check is a work item on a gold image, mixed into an annotator's queue. It goes through review like any
-- item (so nothing tells it apart), its first revision is scored against the reference, and it is never training
-- data: exports and the class and agreement metrics leave gold checks out.
ALTER TABLE core.work_item ADD COLUMN gold_check boolean NOT NULL DEFAULT false;
ALTER TABLE core.work_rule
    ADD COLUMN gold_rate numeric NOT NULL DEFAULT 0 CHECK (gold_rate >= 0 AND gold_rate <= 0.5);
COMMENT ON COLUMN core.work_rule.gold_rate IS
    'Share of an annotator''s items under this rule that are gold checks (0 to 0.5), indistinguishable to them.';

-- Consistency rules: for a class (and its descendants), what a descriptor is expected to be.
CREATE TABLE core.consistency_rule (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES core.project (id),
    class_id    bigint NOT NULL REFERENCES core.taxonomy_node (id),
    field       text NOT NULL CHECK (field ~ '^[a-z][a-z0-9_]*$'),
    expect      text NOT NULL CHECK (expect IN ('equals', 'not_equals', 'contains', 'not_contains')),
    value       jsonb NOT NULL,
    message     text NOT NULL CHECK (length(message) BETWEEN 1 AND 500),
    active      boolean NOT NULL DEFAULT true,
    created_by  bigint REFERENCES auth."user" (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consistency_rule_project_idx ON core.consistency_rule (project_id) WHERE active;
COMMENT ON TABLE core.consistency_rule IS
    'For annotations of class_id or a descendant: descriptor field is expected to equal / not equal / contain / '
    'not contain value; a submit that breaks it raises a review hint.';

CREATE TABLE core.review_hint (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id   bigint NOT NULL REFERENCES core.project (id),
    item_id      bigint NOT NULL REFERENCES core.work_item (id),
    revision_id  bigint NOT NULL REFERENCES core.annotation_revision (id),
    kind         text NOT NULL CHECK (kind IN ('class_descriptor_conflict', 'fast_submit', 'ai_disagreement')),
    message      text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX review_hint_item_idx ON core.review_hint (item_id);
COMMENT ON TABLE core.review_hint IS 'Something a reviewer should look at in a revision, raised by SQL checks.';

-- the annotator's recent active times, read on every submit
CREATE INDEX annotation_revision_author_idx ON core.annotation_revision (author_id, id);

GRANT SELECT ON core.gold_standard, core.consistency_rule TO dl_admin;
-- item_detail reads hints as the caller: annotators may run the query, the policy shows them no rows
GRANT SELECT ON core.review_hint TO dl_annotator, dl_reviewer, dl_admin;
ALTER TABLE core.gold_standard ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.consistency_rule ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.review_hint ENABLE ROW LEVEL SECURITY;
CREATE POLICY gold_standard_admin ON core.gold_standard FOR SELECT TO dl_admin
    USING (project_id = ANY ((SELECT auth.my_projects())::bigint[]));
CREATE POLICY consistency_rule_admin ON core.consistency_rule FOR SELECT TO dl_admin
    USING (project_id = ANY ((SELECT auth.my_projects())::bigint[]));
CREATE POLICY review_hint_qc ON core.review_hint FOR SELECT TO dl_annotator, dl_reviewer, dl_admin
    USING (project_id = ANY ((SELECT auth.my_projects())::bigint[])
           AND ((SELECT auth.has_role('reviewer')) OR (SELECT auth.has_role('admin'))));
