-- Sign-in sessions: every token names its session, and a revoked session's tokens stop working at once
-- (sign-out, password change, account deactivated), not when they expire.

CREATE TABLE auth.session (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         bigint NOT NULL REFERENCES auth."user" (id) ON DELETE CASCADE,
    method          text NOT NULL CHECK (method IN ('password', 'oidc')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    revoked_reason  text CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
CREATE INDEX session_live_by_user_idx ON auth.session (user_id) WHERE revoked_at IS NULL;
COMMENT ON TABLE auth.session IS
    'One row per sign-in. Tokens carry the id (claim sid); each request checks the session is live.';

-- Only SECURITY DEFINER functions touch sessions; no application role reads or writes the table.
REVOKE ALL ON auth.session FROM PUBLIC;
ALTER TABLE auth.session ENABLE ROW LEVEL SECURITY;
