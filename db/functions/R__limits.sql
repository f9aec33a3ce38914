-- Rate limits held in PostgreSQL: one token bucket per person, key, address or account, shared by every app
-- process (auth.rate_bucket, UNLOGGED). The app names the buckets and the budget (DL_RATE_RPC, DL_RATE_LOGIN);
-- the database counts.

CREATE OR REPLACE FUNCTION auth.rate_take(p_buckets text[], p_capacity double precision,
                                          p_per_second double precision) RETURNS double precision
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- Takes one token from each bucket that has one; returns 0 when every bucket had one, else the seconds until the
-- emptiest refills (and that bucket gives nothing). Each bucket is one INSERT ... ON CONFLICT, so concurrent
-- requests of one caller queue on its row for a moment, never on each other's.
DECLARE
    b text;
    now_ timestamptz := clock_timestamp();
    ok boolean;
    left_ double precision;
    wait double precision := 0;
BEGIN
    IF p_buckets IS NULL OR p_capacity IS NULL OR p_per_second IS NULL OR p_per_second <= 0 THEN
        RETURN 0;
    END IF;
    FOREACH b IN ARRAY p_buckets LOOP
        INSERT INTO auth.rate_bucket AS r (bucket, tokens, at, allowed)
        VALUES (b, p_capacity - 1, now_, true)
        ON CONFLICT (bucket) DO UPDATE
           SET tokens = CASE WHEN least(p_capacity, r.tokens + extract(epoch FROM now_ - r.at) * p_per_second) >= 1
                             THEN least(p_capacity, r.tokens + extract(epoch FROM now_ - r.at) * p_per_second) - 1
                             ELSE least(p_capacity, r.tokens + extract(epoch FROM now_ - r.at) * p_per_second) END,
               allowed = least(p_capacity, r.tokens + extract(epoch FROM now_ - r.at) * p_per_second) >= 1,
               at = now_
        RETURNING r.allowed, r.tokens INTO ok, left_;
        IF NOT ok THEN
            wait := greatest(wait, (1 - left_) / p_per_second);
        END IF;
    END LOOP;
    RETURN wait;
END
$$;
COMMENT ON FUNCTION auth.rate_take(text[], double precision, double precision) IS
    'Token buckets (capacity, refill per second) shared by all app processes: 0 when a token was taken from every '
    'bucket, else the seconds to wait. Called by the app''s login role (sign-in, a failed request) and by '
    'auth.begin_request.';
REVOKE EXECUTE ON FUNCTION auth.rate_take(text[], double precision, double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.rate_take(text[], double precision, double precision) TO dl_authenticator;

CREATE OR REPLACE FUNCTION auth.require_rate(p_bucket text, p_capacity double precision,
                                             p_per_second double precision) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    wait double precision := auth.rate_take(ARRAY[p_bucket], p_capacity, p_per_second);
BEGIN
    IF wait > 0 THEN
        RAISE EXCEPTION 'too many requests; try again in % s', ceil(wait) USING ERRCODE = 'PT429',
            DETAIL = ceil(wait)::text, HINT = 'Slow down: the limit is shared by every app process.';
    END IF;
END
$$;
COMMENT ON FUNCTION auth.require_rate(text, double precision, double precision) IS
    'auth.rate_take for one bucket, raising PT429 (429 with Retry-After = DETAIL) when it is empty.';
REVOKE EXECUTE ON FUNCTION auth.require_rate(text, double precision, double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.require_rate(text, double precision, double precision) TO dl_authenticator;
