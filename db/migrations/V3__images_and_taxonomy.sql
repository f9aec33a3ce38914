-- Images, the per-project taxonomy of conditions, and the per-project descriptor schema.

CREATE TYPE core.image_status AS ENUM ('active', 'flagged', 'removed');

CREATE TABLE core.image (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id      bigint NOT NULL REFERENCES core.project (id),
    storage_key     text NOT NULL CHECK (length(storage_key) BETWEEN 1 AND 1024),
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    width           integer NOT NULL CHECK (width > 0),
    height          integer NOT NULL CHECK (height > 0),
    media_type      text NOT NULL,
    source_class    text,
    upload_batch    text,
    metadata        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    status          core.image_status NOT NULL DEFAULT 'active',
    uploaded_by     bigint REFERENCES auth."user" (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, sha256)
);
CREATE INDEX image_project_class_idx ON core.image (project_id, source_class, upload_batch);
COMMENT ON TABLE core.image IS 'An image to annotate; bytes live in storage under storage_key, deduplicated by sha256.';

CREATE TABLE core.taxonomy_node (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id      bigint NOT NULL REFERENCES core.project (id),
    parent_id       bigint REFERENCES core.taxonomy_node (id),
    code            text NOT NULL CHECK (code ~ '^[A-Za-z0-9_.-]{1,64}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 300),
    synonyms        text[] NOT NULL DEFAULT '{}',
    icd10           text,
    snomed_ct       text,
    next_steps      text NOT NULL DEFAULT '',
    active          boolean NOT NULL DEFAULT true,
    sort_order      integer NOT NULL DEFAULT 0,
    search_text     text NOT NULL DEFAULT '',   -- lower(code name synonyms codes), kept by trigger, trigram-indexed
    path            jsonb NOT NULL DEFAULT '[]', -- [{id, code, name}] from the root to this node, kept by trigger
    UNIQUE (project_id, code),
    CHECK (parent_id IS DISTINCT FROM id)
);
CREATE INDEX taxonomy_node_parent_idx ON core.taxonomy_node (parent_id);
-- GiST, not GIN: it serves both LIKE and nearest-first ordering by word similarity (<<->), so type-ahead reads
-- the best few candidates instead of scoring every node.
CREATE INDEX taxonomy_node_search_idx ON core.taxonomy_node USING gist (search_text gist_trgm_ops);
CREATE INDEX taxonomy_node_code_idx ON core.taxonomy_node (project_id, lower(code));
COMMENT ON TABLE core.taxonomy_node IS 'A condition in a project''s classification tree, with codes and next steps.';

CREATE TYPE core.descriptor_kind AS ENUM ('single', 'multi', 'number', 'text', 'boolean');

CREATE TABLE core.descriptor_field (
    project_id      bigint NOT NULL REFERENCES core.project (id),
    key             text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]{0,63}$'),
    label           text NOT NULL,
    kind            core.descriptor_kind NOT NULL,
    options         text[],
    min_value       numeric,
    max_value       numeric,
    unit            text,
    required        boolean NOT NULL DEFAULT false,
    sort_order      integer NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, key),
    CHECK ((kind IN ('single', 'multi')) = (options IS NOT NULL AND cardinality(options) > 0)),
    CHECK (min_value IS NULL OR max_value IS NULL OR min_value <= max_value)
);
COMMENT ON TABLE core.descriptor_field IS 'One structured lesion descriptor of a project (the descriptor schema as data).';
