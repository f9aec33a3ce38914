-- Skip defers an item for the annotator who skipped it (issue: Skip handed the same item back at once): others may
-- take it, and it comes back to them only when nothing else is left or after the project's skip_minutes.
CREATE TABLE core.item_skip (
    item_id    bigint NOT NULL REFERENCES core.work_item (id) ON DELETE CASCADE,
    user_id    bigint NOT NULL REFERENCES auth."user" (id),
    skipped_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (item_id, user_id)
);
COMMENT ON TABLE core.item_skip IS
    'Who skipped which item when: next_item passes over an item its caller skipped less than skip_minutes ago '
    'while anything else is left.';
ALTER TABLE core.project ADD COLUMN skip_minutes integer NOT NULL DEFAULT 60
    CONSTRAINT project_skip_minutes_range CHECK (skip_minutes BETWEEN 0 AND 10080);
COMMENT ON COLUMN core.project.skip_minutes IS
    'How long a skipped item stays deferred for the annotator who skipped it (0: not at all).';
