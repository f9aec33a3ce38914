-- Partners, webhooks and rate limits, held in PostgreSQL.
--
-- auth.api_key          an organization's key for an integration partner: which projects, which scopes, until
--                       when, an optional daily quota; the secret is stored only as its SHA-256 (it is 190 random
--                       bits: a slow hash buys nothing) and shown once.
-- core.partner_case     a partner's case: its own external id, idempotent per organization, and the image it became.
-- core.webhook          where an organization wants events (item.done, item.rejected, image.flagged, ping).
-- core.webhook_delivery one row per event and webhook: the worker sends it signed, retries with backoff, and
--                       records the last status. Writing the row is all the request that caused the event does.
-- auth.rate_bucket      token buckets shared by every app process (per person, key, address, account).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'dl_partner') THEN
        CREATE ROLE dl_partner NOLOGIN;
    END IF;
END
$$;
GRANT dl_partner TO dl_authenticator;
GRANT USAGE ON SCHEMA api, auth TO dl_partner;

CREATE TABLE auth.api_key (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id bigint NOT NULL REFERENCES core.organization (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    prefix          text NOT NULL UNIQUE CHECK (prefix ~ '^dl_[a-z0-9]{8}$'),
    secret_sha256   bytea NOT NULL CHECK (length(secret_sha256) = 32),
    project_ids     bigint[] NOT NULL CHECK (cardinality(project_ids) > 0),
    scopes          text[] NOT NULL CHECK (cardinality(scopes) > 0
                                           AND scopes <@ ARRAY['images:write', 'results:read', 'export:read']),
    expires_at      timestamptz NOT NULL,
    daily_quota     integer CHECK (daily_quota > 0),
    created_by      bigint REFERENCES auth."user" (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    replaced_by     bigint REFERENCES auth.api_key (id),
    last_used_at    timestamptz,
    use_count       bigint NOT NULL DEFAULT 0
);
CREATE INDEX api_key_organization_idx ON auth.api_key (organization_id);
COMMENT ON TABLE auth.api_key IS
    'Partner API keys: "dl_<8 chars>_<secret>"; the prefix finds the row, the SHA-256 of the whole key proves it.';
REVOKE ALL ON auth.api_key FROM PUBLIC;

CREATE TABLE auth.api_key_day (
    key_id      bigint NOT NULL REFERENCES auth.api_key (id) ON DELETE CASCADE,
    day         date NOT NULL,
    requests    integer NOT NULL,
    PRIMARY KEY (key_id, day)
);
COMMENT ON TABLE auth.api_key_day IS 'Requests per key and UTC day, for the daily quota.';
REVOKE ALL ON auth.api_key_day FROM PUBLIC;

CREATE TABLE core.partner_case (
    organization_id bigint NOT NULL REFERENCES core.organization (id) ON DELETE CASCADE,
    external_id     text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 200),
    project_id      bigint NOT NULL REFERENCES core.project (id),
    image_id        bigint NOT NULL REFERENCES core.image (id),
    key_id          bigint REFERENCES auth.api_key (id),
    metadata        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, external_id)
);
CREATE INDEX partner_case_image_idx ON core.partner_case (image_id);
COMMENT ON TABLE core.partner_case IS
    'A case a partner sent: their external id (unique per organization: a re-send answers the same case), the image.';
REVOKE ALL ON core.partner_case FROM PUBLIC;

CREATE TABLE core.webhook (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id bigint NOT NULL REFERENCES core.organization (id) ON DELETE CASCADE,
    url             text NOT NULL CHECK (length(url) <= 2000),
    events          text[] NOT NULL CHECK (cardinality(events) > 0
                                           AND events <@ ARRAY['item.done', 'item.rejected', 'image.flagged',
                                                               'release.ready']),
    secret          text NOT NULL,  -- the HMAC key deliveries are signed with; shown once, read by the worker
    active          boolean NOT NULL DEFAULT true,
    created_by      bigint REFERENCES auth."user" (id),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_organization_idx ON core.webhook (organization_id) WHERE active;
COMMENT ON TABLE core.webhook IS 'An organization''s endpoint for events, signed with HMAC-SHA256 of its secret.';
REVOKE ALL ON core.webhook FROM PUBLIC;

CREATE TYPE core.delivery_status AS ENUM ('pending', 'sending', 'delivered', 'failed');

CREATE TABLE core.webhook_delivery (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id      bigint NOT NULL REFERENCES core.webhook (id) ON DELETE CASCADE,
    event           text NOT NULL,
    payload         jsonb NOT NULL,
    status          core.delivery_status NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX webhook_delivery_due_idx ON core.webhook_delivery (next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX webhook_delivery_webhook_idx ON core.webhook_delivery (webhook_id, id DESC);
COMMENT ON TABLE core.webhook_delivery IS
    'One event for one webhook: sent by the worker, retried with backoff, its last answer recorded.';
REVOKE ALL ON core.webhook_delivery FROM PUBLIC;

-- UNLOGGED: a limiter's state is worth no WAL; after a crash every bucket starts full.
CREATE UNLOGGED TABLE auth.rate_bucket (
    bucket      text PRIMARY KEY,
    tokens      double precision NOT NULL,
    at          timestamptz NOT NULL,
    allowed     boolean NOT NULL
);
COMMENT ON TABLE auth.rate_bucket IS 'Token buckets of the rate limits, one per person, key, address or account.';
REVOKE ALL ON auth.rate_bucket FROM PUBLIC;

-- The request's first statement now also takes a token from the caller's bucket (R__auth, R__limits).
DROP FUNCTION IF EXISTS auth.begin_request(bigint, text, text[], text);
