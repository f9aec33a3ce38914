-- Identities that look alike are one identity. An email is stored in one normal form: NFKC, lower case, ASCII
-- (international domains in punycode). ＡＤＭＩＮ@… (fullwidth), ADMIN@… and the Kelvin sign all name admin@…, so
-- they cannot be created beside it and sign in as it; an address with an invisible character (admin\u200b@…) or a
-- letter from another script (Cyrillic а, Greek Α) is refused. PostgreSQL's regular expressions know no scripts:
-- asking for ASCII after normalising is what rules out mixed-script lookalikes exactly.
--
-- The functions live here, not in a repeatable: the CHECK constraint below depends on auth.email_key, and a
-- repeatable must never be able to drop (or change the meaning of) what a constraint on stored rows relies on.

CREATE FUNCTION auth.email_key(p_email text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = '' AS $$
    SELECT k FROM (SELECT normalize(lower(normalize(btrim(p_email), NFKC)), NFKC) AS k) n
     WHERE k ~ '^[a-z0-9!#$%&''*+/=?^_`{|}~.-]{1,64}@[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})*$'
       AND length(k) <= 254
$$;
COMMENT ON FUNCTION auth.email_key(text) IS
    'The one form of an email (NFKC, lower case, ASCII only, at most 254 characters): what auth."user".email '
    'stores and sign-in looks up. NULL when the text is no such address (invisible characters, other scripts, '
    'no @); never raises.';

CREATE FUNCTION auth.check_email(p_email text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = '' AS $$
DECLARE
    k text := auth.email_key(p_email);
BEGIN
    IF k IS NOT NULL THEN
        RETURN k;
    END IF;
    -- controls and whitespace by code point: what [[:space:]] matches beyond ASCII depends on the locale
    IF normalize(coalesce(p_email, ''), NFKC) ~ ('[\u00AD\u200B-\u200F\u202A-\u202E\u2060-\u206F\uFEFF'
                                                 '\U000E0001-\U000E007F'
                                                 '\u0001-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029'
                                                 '\u202F\u205F\u3000]') THEN
        PERFORM core.invalid('email', 'contains an invisible character');
    END IF;
    PERFORM core.invalid('email', 'must be an address in ASCII (international domains in punycode)');
    RETURN NULL;  -- not reached: core.invalid raises
END
$$;
COMMENT ON FUNCTION auth.check_email(text) IS
    'auth.email_key of an email, or 22023 naming the field email: "contains an invisible character" or "must be '
    'an address in ASCII (international domains in punycode)".';

-- Every writer of auth."user" (api.create_user, the seed's first rows, test helpers, code to come) stores the
-- normal form or is refused.
CREATE FUNCTION auth.normalise_email() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    NEW.email := auth.check_email(NEW.email::text);
    RETURN NEW;
END
$$;

-- Rows stored before: refuse, naming the accounts, when two would become one identity or one has no normal form
-- (an operator decides which account stays); emails themselves stay out of the message and the migration log.
DO $$
DECLARE
    twins text;
    broken text;
BEGIN
    SELECT string_agg(ids, ', ' ORDER BY lowest) INTO twins FROM (
        SELECT '(' || string_agg(u.id::text, ', ' ORDER BY u.id) || ')' AS ids, min(u.id) AS lowest
          FROM auth."user" u
         WHERE auth.email_key(u.email::text) IS NOT NULL
         GROUP BY auth.email_key(u.email::text) HAVING count(*) > 1) g;
    SELECT string_agg(u.id::text, ', ' ORDER BY u.id) INTO broken FROM auth."user" u
     WHERE auth.email_key(u.email::text) IS NULL;
    IF twins IS NOT NULL OR broken IS NOT NULL THEN
        RAISE EXCEPTION 'emails of existing accounts cannot be normalised (NFKC, lower case, ASCII): %. '
                        'Rename, merge or remove these accounts, then migrate again.',
            concat_ws('; ', 'accounts that would be one identity, by id: ' || twins,
                            'accounts whose email has invisible or non-ASCII characters, by id: ' || broken)
            USING ERRCODE = CASE WHEN twins IS NOT NULL THEN '23505' ELSE '22023' END;
    END IF;
END
$$;

UPDATE auth."user" u SET email = auth.email_key(u.email::text)
 WHERE u.email::text IS DISTINCT FROM auth.email_key(u.email::text);

CREATE TRIGGER normalise_email BEFORE INSERT OR UPDATE OF email ON auth."user"
    FOR EACH ROW EXECUTE FUNCTION auth.normalise_email();

ALTER TABLE auth."user" ADD CONSTRAINT user_email_normalised
    CHECK (email::text = auth.email_key(email::text)) NOT VALID;
ALTER TABLE auth."user" VALIDATE CONSTRAINT user_email_normalised;
