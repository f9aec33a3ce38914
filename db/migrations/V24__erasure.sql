-- Erasure (GDPR): an image erased everywhere, a person pseudonymised; bytes of removed and erased images deleted
-- from storage by the worker (core.storage_purge: SQL decides, the worker only deletes).

CREATE TABLE core.storage_purge (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    storage_key     text NOT NULL CHECK (length(storage_key) BETWEEN 1 AND 1024),
    image_id        bigint,
    reason          text NOT NULL CHECK (reason IN ('image_removed', 'image_erased', 'retention', 'consent_withdrawn')),
    requested_at    timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    done_at         timestamptz,
    last_error      text
);
CREATE INDEX storage_purge_due_idx ON core.storage_purge (next_attempt_at) WHERE done_at IS NULL;
COMMENT ON TABLE core.storage_purge IS
    'Stored objects to delete (an image removed or erased): the worker deletes each and records it done.';
REVOKE ALL ON core.storage_purge FROM PUBLIC;

-- When an image's bytes were purged or it was erased.
ALTER TABLE core.image ADD COLUMN erased_at timestamptz;

-- Retention: a project may erase its images some days after their work is over (core.apply_retention, run by
-- the app's scheduler with the metrics refresh).
ALTER TABLE core.project ADD COLUMN retention_days integer CHECK (retention_days BETWEEN 1 AND 36500);
COMMENT ON COLUMN core.project.retention_days IS
    'Erase an image this many days after every item of it is finished (done, rejected, cancelled); NULL: keep.';

-- An erasure (or retention) closes whatever of the image was still open.
INSERT INTO core.item_transition VALUES
    ('new', 'cancelled', 'erase_image'),
    ('in_progress', 'cancelled', 'erase_image'),
    ('review', 'cancelled', 'erase_image'),
    ('edits_requested', 'cancelled', 'erase_image'),
    ('rejected', 'cancelled', 'erase_image');
