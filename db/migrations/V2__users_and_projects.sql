-- Users, their roles and expertise; projects and who belongs to them.

CREATE TYPE auth.app_role AS ENUM ('annotator', 'reviewer', 'admin', 'analyst');

CREATE TABLE auth."user" (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email           citext NOT NULL UNIQUE CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
    display_name    text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    password_hash   text,                       -- bcrypt via pgcrypto; NULL: OIDC-only account
    roles           auth.app_role[] NOT NULL DEFAULT '{}',
    expertise       text[] NOT NULL DEFAULT '{}',
    review_level    smallint NOT NULL DEFAULT 1 CHECK (review_level IN (1, 2)),
    active          boolean NOT NULL DEFAULT true,
    on_vacation     boolean NOT NULL DEFAULT false,
    failed_logins   integer NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE auth."user" IS 'People who use DermLabel: login, roles, expertise tags, review level, availability.';

CREATE TABLE core.project (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    description     text NOT NULL DEFAULT '',
    review_stages   smallint NOT NULL DEFAULT 1 CHECK (review_stages IN (1, 2)),
    lock_minutes    integer NOT NULL DEFAULT 30 CHECK (lock_minutes BETWEEN 1 AND 1440),
    created_by      bigint REFERENCES auth."user" (id),
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE core.project IS 'A body of annotation work with its own images, taxonomy, descriptor schema and rules.';

CREATE TABLE core.project_member (
    project_id      bigint NOT NULL REFERENCES core.project (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL REFERENCES auth."user" (id),
    added_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_member_user_idx ON core.project_member (user_id, project_id);
COMMENT ON TABLE core.project_member IS 'Who may see and work in a project.';
