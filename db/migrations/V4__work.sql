-- The work: rules that create items, the items and their state machine, drafts, revisions, reviews, flags.

CREATE TABLE core.work_rule (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id            bigint NOT NULL REFERENCES core.project (id),
    name                  text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    source_classes        text[],              -- NULL: any source class
    upload_batch          text,                -- NULL: any batch
    metadata_filter       jsonb,               -- NULL: any; else image.metadata @> filter
    max_items             integer NOT NULL CHECK (max_items BETWEEN 0 AND 10000000),
    priority              integer NOT NULL DEFAULT 0,
    annotations_per_image smallint NOT NULL DEFAULT 1 CHECK (annotations_per_image BETWEEN 1 AND 10),
    expertise             text,                -- NULL: anyone; else the annotator must have this tag
    pool_user_ids         bigint[],            -- NULL: anyone; else only these annotators (private pool)
    active                boolean NOT NULL DEFAULT true,
    created_by            bigint REFERENCES auth."user" (id),
    created_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name),
    CHECK (metadata_filter IS NULL OR jsonb_typeof(metadata_filter) = 'object')
);
COMMENT ON TABLE core.work_rule IS 'Admin rule: which images to annotate, how many items at most, priority, pools.';

CREATE TYPE core.item_status AS ENUM
    ('new', 'in_progress', 'review', 'edits_requested', 'done', 'rejected', 'cancelled');

CREATE TABLE core.work_item (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id        bigint NOT NULL REFERENCES core.project (id),
    image_id          bigint NOT NULL REFERENCES core.image (id),
    rule_id           bigint NOT NULL REFERENCES core.work_rule (id),
    slot              smallint NOT NULL DEFAULT 1,       -- 1..annotations_per_image of its rule
    status            core.item_status NOT NULL DEFAULT 'new',
    priority          integer NOT NULL DEFAULT 0,
    annotator_id      bigint REFERENCES auth."user" (id), -- who annotates it (kept through review and edits)
    assignee_id       bigint REFERENCES auth."user" (id), -- who holds the lock now (annotator or reviewer)
    locked_at         timestamptz,
    lock_expires_at   timestamptz,
    review_stage      smallint NOT NULL DEFAULT 1,
    last_revision_seq integer NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    submitted_at      timestamptz,
    UNIQUE (rule_id, image_id, slot),
    -- invariants of each state (the allowed moves are in core.item_transition)
    CONSTRAINT lock_fields_together CHECK ((assignee_id IS NULL) = (lock_expires_at IS NULL)
                                           AND (locked_at IS NULL) = (lock_expires_at IS NULL)),
    CONSTRAINT new_is_unowned CHECK (status <> 'new' OR (annotator_id IS NULL AND assignee_id IS NULL)),
    CONSTRAINT in_progress_is_held CHECK (status <> 'in_progress' OR assignee_id = annotator_id),
    CONSTRAINT annotated_has_annotator CHECK (status NOT IN ('review', 'edits_requested', 'done')
                                              OR annotator_id IS NOT NULL),
    CONSTRAINT settled_is_unlocked CHECK (status NOT IN ('edits_requested', 'done', 'rejected', 'cancelled')
                                          OR assignee_id IS NULL),
    CONSTRAINT review_stage_range CHECK (review_stage IN (1, 2))
);
-- The claim path: only claimable rows are in these indexes, so dead entries of claimed rows leave quickly.
CREATE INDEX work_item_claim_new_idx ON core.work_item (project_id, priority DESC, created_at, id)
    WHERE status = 'new';
CREATE INDEX work_item_held_idx ON core.work_item (assignee_id, status) WHERE assignee_id IS NOT NULL;
CREATE INDEX work_item_annotator_idx ON core.work_item (annotator_id, status) WHERE annotator_id IS NOT NULL;
CREATE INDEX work_item_review_idx ON core.work_item (project_id, review_stage, priority DESC, submitted_at, id)
    WHERE status = 'review';
CREATE INDEX work_item_expiring_idx ON core.work_item (project_id, lock_expires_at) WHERE status = 'in_progress';
CREATE INDEX work_item_image_idx ON core.work_item (image_id);
-- Double annotation: one person never annotates the same image twice, even under concurrent claims.
CREATE UNIQUE INDEX work_item_one_per_annotator_image ON core.work_item (image_id, annotator_id)
    WHERE annotator_id IS NOT NULL AND status <> 'cancelled';
ALTER TABLE core.work_item SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0,
                                fillfactor = 80);
COMMENT ON TABLE core.work_item IS 'One unit of annotation work on one image, moving through the state machine.';

CREATE TABLE core.item_transition (
    from_status core.item_status NOT NULL,
    to_status   core.item_status NOT NULL,
    action      text NOT NULL,
    PRIMARY KEY (from_status, to_status, action)
);
COMMENT ON TABLE core.item_transition IS 'The legal status moves and the action that makes each; a trigger enforces it.';
INSERT INTO core.item_transition VALUES
    ('new', 'in_progress', 'next_item'),
    ('edits_requested', 'in_progress', 'next_item'),
    ('in_progress', 'new', 'release_item'),
    ('in_progress', 'review', 'submit_annotation'),
    ('in_progress', 'rejected', 'reject_image'),
    ('review', 'done', 'approve'),
    ('review', 'edits_requested', 'request_changes'),
    ('rejected', 'new', 'resolve_flag'),
    ('rejected', 'cancelled', 'resolve_flag'),
    ('new', 'cancelled', 'resolve_flag'),
    ('in_progress', 'cancelled', 'resolve_flag'),
    ('review', 'cancelled', 'resolve_flag'),
    ('edits_requested', 'cancelled', 'resolve_flag'),
    ('new', 'cancelled', 'cancel_item'),
    ('in_progress', 'cancelled', 'cancel_item'),
    ('review', 'cancelled', 'cancel_item'),
    ('edits_requested', 'cancelled', 'cancel_item'),
    ('rejected', 'cancelled', 'cancel_item');

CREATE TABLE core.annotation_draft (
    item_id     bigint NOT NULL REFERENCES core.work_item (id),
    author_id   bigint NOT NULL REFERENCES auth."user" (id),
    content     jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (item_id, author_id)
);
COMMENT ON TABLE core.annotation_draft IS 'Autosaved work in progress, one per item and author; not a revision.';

CREATE TABLE core.annotation_revision (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id       bigint NOT NULL REFERENCES core.work_item (id),
    revision_seq  integer NOT NULL CHECK (revision_seq > 0),
    author_id     bigint NOT NULL REFERENCES auth."user" (id),
    content       jsonb NOT NULL,
    class_id      bigint REFERENCES core.taxonomy_node (id),
    locked_at     timestamptz,                 -- when the author took the item: active time = created_at - locked_at
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (item_id, revision_seq)
);
COMMENT ON TABLE core.annotation_revision IS 'Immutable submitted annotation; revision_seq is 1, 2, 3 ... per item.';

CREATE TYPE core.review_decision AS ENUM ('approved', 'changes_requested');

CREATE TABLE core.review (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id       bigint NOT NULL REFERENCES core.work_item (id),
    revision_id   bigint NOT NULL REFERENCES core.annotation_revision (id),
    stage         smallint NOT NULL CHECK (stage IN (1, 2)),
    reviewer_id   bigint NOT NULL REFERENCES auth."user" (id),
    decision      core.review_decision NOT NULL,
    comment       text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (revision_id, stage),
    CHECK (decision = 'approved' OR length(btrim(comment)) > 0)
);
CREATE INDEX review_item_idx ON core.review (item_id, created_at);
COMMENT ON TABLE core.review IS 'Immutable QC decision on one revision at one review stage.';

CREATE TYPE core.flag_reason AS ENUM
    ('bad_quality', 'not_skin', 'not_a_lesion', 'duplicate', 'identifiable', 'wrong_source_class', 'other');

CREATE TABLE core.work_item_flag (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id            bigint NOT NULL REFERENCES core.work_item (id),
    image_id           bigint NOT NULL REFERENCES core.image (id),
    reason             core.flag_reason NOT NULL,
    comment            text NOT NULL DEFAULT '',
    raised_by          bigint NOT NULL REFERENCES auth."user" (id),
    created_at         timestamptz NOT NULL DEFAULT now(),
    resolved_at        timestamptz,
    resolved_by        bigint REFERENCES auth."user" (id),
    resolution         text CHECK (resolution IN ('restored', 'image_removed')),
    resolution_comment text,
    CHECK ((resolved_at IS NULL) = (resolution IS NULL))
);
CREATE INDEX work_item_flag_open_idx ON core.work_item_flag (image_id) WHERE resolved_at IS NULL;
COMMENT ON TABLE core.work_item_flag IS 'An image rejected by an annotator, waiting for (or resolved by) an admin.';

CREATE TABLE core.description_template (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id    bigint NOT NULL REFERENCES auth."user" (id),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    body        text NOT NULL CHECK (length(body) <= 20000),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, name)
);
COMMENT ON TABLE core.description_template IS 'An annotator''s personal snippet for the description field.';
