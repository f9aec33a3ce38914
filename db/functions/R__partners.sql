-- Partner API keys: an organization admin gives an integration partner a key for some of its projects and scopes
-- (images:write, results:read, export:read), until a date, with an optional daily quota. A key request runs as
-- dl_partner with the key's id in its claims (never the key); every api function a key may call checks the scope
-- and the project here.

CREATE OR REPLACE FUNCTION auth.key_id() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT (nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::pg_catalog.jsonb
            OPERATOR(pg_catalog.->>) 'key_id')::pg_catalog.int8
$$;
COMMENT ON FUNCTION auth.key_id() IS 'The calling partner key''s id from the claims, NULL for people.';
GRANT EXECUTE ON FUNCTION auth.key_id() TO dl_partner, dl_admin, dl_annotator, dl_reviewer, dl_analyst, dl_member;

CREATE OR REPLACE FUNCTION auth.key_request(p_key text, p_candidates text[], p_call text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- Proves the key (prefix finds the row, SHA-256 of the whole key must match), refuses a revoked or expired one
-- exactly like an unknown one (PT401), counts the day's requests against the quota (PT429), and audits the use.
DECLARE
    k auth.api_key;
    used integer;
BEGIN
    SELECT * INTO k FROM auth.api_key a WHERE a.prefix = substr(p_key, 1, 11);
    IF NOT FOUND OR k.secret_sha256 IS DISTINCT FROM public.digest(p_key, 'sha256')
       OR k.revoked_at IS NOT NULL OR k.expires_at <= now() THEN
        RAISE EXCEPTION 'invalid, revoked or expired API key' USING ERRCODE = 'PT401',
            HINT = 'Ask your organization''s admin for a key.';
    END IF;
    IF NOT 'dl_partner' = ANY (p_candidates) THEN
        RAISE EXCEPTION 'permission denied: an API key cannot call this' USING ERRCODE = '42501';
    END IF;
    INSERT INTO auth.api_key_day AS d (key_id, day, requests) VALUES (k.id, (now() AT TIME ZONE 'UTC')::date, 1)
    ON CONFLICT (key_id, day) DO UPDATE SET requests = d.requests + 1
    RETURNING d.requests INTO used;
    IF k.daily_quota IS NOT NULL AND used > k.daily_quota THEN
        RAISE EXCEPTION 'the key''s daily quota of % requests is used up', k.daily_quota USING ERRCODE = 'PT429',
            DETAIL = ceil(extract(epoch FROM date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day'
                                              - (now() AT TIME ZONE 'UTC')))::text,
            HINT = 'The quota starts again at midnight UTC.';
    END IF;
    UPDATE auth.api_key a SET last_used_at = now(), use_count = a.use_count + 1 WHERE a.id = k.id;
    INSERT INTO audit.event (actor_id, action, entity, entity_id, after, request_id, organization_id)
    VALUES (NULL, 'api_key_use', 'api_key', k.id, jsonb_build_object('call', p_call), auth.claims() ->> 'request_id',
            k.organization_id);
    RETURN jsonb_build_object('key_id', k.id, 'organization_id', k.organization_id);
END
$$;
COMMENT ON FUNCTION auth.key_request(text, text[], text) IS
    'Checks a partner key for one request (PT401 unknown/revoked/expired, PT429 over its daily quota), counts and '
    'audits the use; returns its id and organization. Called through auth.begin_key_request.';
REVOKE EXECUTE ON FUNCTION auth.key_request(text, text[], text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION auth.begin_key_request(p_key text, p_candidates text[], p_claims text,
                                                  p_bucket text DEFAULT NULL,
                                                  p_capacity double precision DEFAULT NULL,
                                                  p_per_second double precision DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
-- Invoker, like auth.begin_request: the first statement of a request made with a partner key.
DECLARE
    k jsonb;
BEGIN
    IF p_bucket IS NOT NULL THEN
        PERFORM auth.require_rate(p_bucket, p_capacity, p_per_second);
    END IF;
    PERFORM pg_catalog.set_config('request.jwt.claims', coalesce(nullif(p_claims, ''), '{}'), true);
    k := auth.key_request(p_key, p_candidates, coalesce(nullif(p_claims, ''), '{}')::jsonb ->> 'call');
    PERFORM pg_catalog.set_config('request.jwt.claims',
        (coalesce(nullif(p_claims, ''), '{}')::jsonb || k || jsonb_build_object('role', 'dl_partner'))::text, true);
    PERFORM pg_catalog.set_config('role', 'dl_partner', true);
    RETURN 'dl_partner';
END
$$;
COMMENT ON FUNCTION auth.begin_key_request(text, text[], text, text, double precision, double precision) IS
    'The first statement of a request made with a partner key, as the app''s login role: rate limit per key, the '
    'key checked, counted and audited (auth.key_request), claims and role dl_partner set for the transaction. The '
    'key itself is never put in the claims.';
REVOKE EXECUTE ON FUNCTION auth.begin_key_request(text, text[], text, text, double precision, double precision)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.key_request(text, text[], text),
                          auth.begin_key_request(text, text[], text, text, double precision, double precision)
    TO dl_authenticator;

CREATE OR REPLACE FUNCTION core.require_scope(p_scope text, p_project bigint) RETURNS auth.api_key
LANGUAGE plpgsql SET search_path = '' AS $$
-- A project outside the key's projects does not exist for it (P0002); a scope it lacks is not allowed (42501).
DECLARE
    k auth.api_key;
BEGIN
    SELECT * INTO k FROM auth.api_key a WHERE a.id = auth.key_id();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'permission denied: this needs a partner key' USING ERRCODE = '42501';
    END IF;
    IF p_project IS NULL OR NOT p_project = ANY (k.project_ids)
       OR NOT EXISTS (SELECT 1 FROM core.project p WHERE p.id = p_project AND p.organization_id = k.organization_id) THEN
        RAISE EXCEPTION 'project % not found', p_project USING ERRCODE = 'P0002';
    END IF;
    IF NOT p_scope = ANY (k.scopes) THEN
        RAISE EXCEPTION 'permission denied: this key has no % scope', p_scope USING ERRCODE = '42501';
    END IF;
    PERFORM core.in_organization(k.organization_id);
    RETURN k;
END
$$;
COMMENT ON FUNCTION core.require_scope(text, bigint) IS
    'The calling key when it has the scope and the project; P0002 for a project outside it, 42501 for a scope.';

CREATE OR REPLACE FUNCTION core.api_key_json(p_key bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT jsonb_build_object('id', k.id, 'name', k.name, 'prefix', k.prefix, 'organization_id', k.organization_id,
                              'project_ids', to_jsonb(k.project_ids), 'scopes', to_jsonb(k.scopes),
                              'expires_at', k.expires_at, 'daily_quota', k.daily_quota, 'created_at', k.created_at,
                              'revoked_at', k.revoked_at, 'replaced_by', k.replaced_by,
                              'last_used_at', k.last_used_at, 'use_count', k.use_count,
                              'used_today', coalesce((SELECT d.requests FROM auth.api_key_day d
                                                       WHERE d.key_id = k.id
                                                         AND d.day = (now() AT TIME ZONE 'UTC')::date), 0))
      FROM auth.api_key k WHERE k.id = p_key
$$;
COMMENT ON FUNCTION core.api_key_json(bigint) IS 'A key as its admins see it: never the secret.';

CREATE OR REPLACE FUNCTION core.new_api_key(p_org bigint, p_name text, p_projects bigint[], p_scopes text[],
                                            p_expires timestamptz, p_quota integer, p_me bigint) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
-- The secret: "dl_" + 8 characters of prefix + "_" + 32 of secret, from gen_random_bytes; returned once.
DECLARE
    alphabet constant text := 'abcdefghijklmnopqrstuvwxyz0123456789';
    prefix text;
    secret text;
    id bigint;
BEGIN
    IF p_name IS NULL OR length(btrim(p_name)) NOT BETWEEN 1 AND 200 THEN
        PERFORM core.invalid('name', 'must be 1 to 200 characters');
    END IF;
    IF p_projects IS NULL OR cardinality(p_projects) = 0 OR EXISTS (
            SELECT 1 FROM unnest(p_projects) x WHERE NOT EXISTS (
                SELECT 1 FROM core.project p WHERE p.id = x AND p.organization_id = p_org)) THEN
        PERFORM core.invalid('project_ids', 'must name projects of the organization');
    END IF;
    IF p_scopes IS NULL OR cardinality(p_scopes) = 0
       OR NOT p_scopes <@ ARRAY['images:write', 'results:read', 'export:read'] THEN
        PERFORM core.invalid('scopes', 'must be some of images:write, results:read, export:read');
    END IF;
    IF p_expires IS NULL OR p_expires <= now() OR p_expires > now() + interval '2 years' THEN
        PERFORM core.invalid('expires_at', 'must be in the future, at most two years ahead');
    END IF;
    IF p_quota IS NOT NULL AND p_quota < 1 THEN
        PERFORM core.invalid('daily_quota', 'must be at least 1 (or null: no quota)');
    END IF;
    prefix := 'dl_' || (SELECT string_agg(substr(alphabet, (get_byte(b, i) % 36) + 1, 1), '' ORDER BY i)
                          FROM (SELECT public.gen_random_bytes(8) AS b) r, generate_series(0, 7) i);
    secret := prefix || '_' || (SELECT string_agg(substr(alphabet, (get_byte(b, i) % 36) + 1, 1), '' ORDER BY i)
                                  FROM (SELECT public.gen_random_bytes(32) AS b) r, generate_series(0, 31) i);
    INSERT INTO auth.api_key (organization_id, name, prefix, secret_sha256, project_ids, scopes, expires_at,
                              daily_quota, created_by)
    VALUES (p_org, btrim(p_name), prefix, public.digest(secret, 'sha256'),
            ARRAY(SELECT DISTINCT unnest(p_projects) ORDER BY 1), ARRAY(SELECT DISTINCT unnest(p_scopes) ORDER BY 1),
            p_expires, p_quota, p_me)
    RETURNING api_key.id INTO id;
    RETURN core.api_key_json(id) || jsonb_build_object('key', secret);
END
$$;
COMMENT ON FUNCTION core.new_api_key(bigint, text, bigint[], text[], timestamptz, integer, bigint) IS
    'Makes a key (checked arguments) and returns it with its secret, the only time the secret exists outside it.';

CREATE OR REPLACE FUNCTION api.create_api_key(organization_id bigint, name text, project_ids bigint[], scopes text[],
                                              expires_at timestamptz DEFAULT NULL, daily_quota integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_role('admin');
    org bigint := core.own_admin_org(organization_id);
    out jsonb;
BEGIN
    out := core.new_api_key(org, name, project_ids, scopes, coalesce(expires_at, now() + interval '90 days'),
                            daily_quota, me);
    PERFORM core.audit('create_api_key', 'api_key', (out ->> 'id')::bigint, NULL, out - 'key');
    RETURN out;
END
$$;
COMMENT ON FUNCTION api.create_api_key(bigint, text, bigint[], text[], timestamptz, integer) IS
    'Organization admin: a key for an integration partner, for some of your projects and scopes (images:write, '
    'results:read, export:read), until expires_at (default 90 days, at most 2 years), with an optional daily '
    'quota of requests. The answer''s `key` is the secret, shown this once: only its hash is kept.';

CREATE OR REPLACE FUNCTION core.managed_key(p_key bigint) RETURNS auth.api_key
LANGUAGE plpgsql SET search_path = '' AS $$
DECLARE
    k auth.api_key;
BEGIN
    PERFORM core.require_signed_in();
    SELECT * INTO k FROM auth.api_key a WHERE a.id = p_key FOR UPDATE;
    PERFORM core.require_own_org(k.organization_id, format('API key %s not found', p_key));
    RETURN k;
END
$$;
COMMENT ON FUNCTION core.managed_key(bigint) IS 'Locks a key of an organization the caller administers; P0002 otherwise.';

CREATE OR REPLACE FUNCTION api.list_api_keys(organization_id bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    org bigint;
BEGIN
    PERFORM core.require_role('admin');
    org := core.own_admin_org(organization_id);
    RETURN (SELECT coalesce(jsonb_agg(core.api_key_json(k.id) ORDER BY k.revoked_at IS NOT NULL, k.id DESC), '[]')
              FROM auth.api_key k WHERE k.organization_id = org);
END
$$;
COMMENT ON FUNCTION api.list_api_keys(bigint) IS
    'Organization admin: your organization''s keys (prefix, projects, scopes, expiry, last use, uses today and in '
    'all); never their secrets.';

CREATE OR REPLACE FUNCTION api.revoke_api_key(key_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    k auth.api_key;
BEGIN
    PERFORM core.require_role('admin');
    k := core.managed_key(key_id);
    UPDATE auth.api_key a SET revoked_at = coalesce(a.revoked_at, now()) WHERE a.id = k.id;
    PERFORM core.audit('revoke_api_key', 'api_key', k.id, NULL, NULL);
    RETURN core.api_key_json(k.id);
END
$$;
COMMENT ON FUNCTION api.revoke_api_key(bigint) IS
    'Organization admin: the key stops working at its next request.';

CREATE OR REPLACE FUNCTION api.rotate_api_key(key_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    k auth.api_key;
    out jsonb;
BEGIN
    PERFORM core.require_role('admin');
    k := core.managed_key(key_id);
    IF k.revoked_at IS NOT NULL THEN
        RAISE EXCEPTION 'API key % is revoked', key_id USING ERRCODE = 'PT409';
    END IF;
    out := core.new_api_key(k.organization_id, k.name, k.project_ids, k.scopes, greatest(k.expires_at, now() + interval '1 day'),
                            k.daily_quota, auth.uid());
    UPDATE auth.api_key a SET revoked_at = now(), replaced_by = (out ->> 'id')::bigint WHERE a.id = k.id;
    PERFORM core.audit('rotate_api_key', 'api_key', k.id, NULL, out - 'key');
    RETURN out;
END
$$;
COMMENT ON FUNCTION api.rotate_api_key(bigint) IS
    'Organization admin: a new key with the same projects, scopes, expiry and quota; the old one stops at once. '
    'The answer''s `key` is the new secret, shown this once.';

CREATE OR REPLACE FUNCTION api.key_info()
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    IF auth.key_id() IS NULL THEN
        RAISE EXCEPTION 'permission denied: this needs a partner key' USING ERRCODE = '42501';
    END IF;
    RETURN core.api_key_json(auth.key_id()) - 'replaced_by';
END
$$;
COMMENT ON FUNCTION api.key_info() IS
    'Partner: the key you call with: its projects, scopes, expiry, daily quota and how much of it is used today.';

CREATE OR REPLACE FUNCTION api.register_partner_image(project_id bigint, external_id text, storage_key text,
                                                      sha256 text, width integer, height integer, media_type text,
                                                      metadata jsonb DEFAULT '{}', consent_ref text DEFAULT NULL,
                                                      source_class text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- Idempotent on (the key's organization, external_id): sending a case again answers the same case; the same id
-- with other bytes is a conflict. Called by the upload route for a key with images:write.
DECLARE
    k auth.api_key := core.require_scope('images:write', project_id);
    c core.partner_case;
    img jsonb;
BEGIN
    IF external_id IS NULL OR length(external_id) NOT BETWEEN 1 AND 200 THEN
        PERFORM core.invalid('external_id', 'is required (1 to 200 characters): your own id of the case');
    END IF;
    IF metadata IS NOT NULL AND jsonb_typeof(metadata) <> 'object' THEN
        PERFORM core.invalid('metadata', 'must be a JSON object');
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(k.organization_id || '/' || external_id, 0));
    SELECT * INTO c FROM core.partner_case x
     WHERE x.organization_id = k.organization_id AND x.external_id = register_partner_image.external_id;
    IF FOUND THEN
        IF (SELECT i.sha256 FROM core.image i WHERE i.id = c.image_id) <> lower(register_partner_image.sha256)
           OR c.project_id <> register_partner_image.project_id THEN
            RAISE EXCEPTION 'external_id % already names another case', external_id USING ERRCODE = 'PT409',
                HINT = 'Each case needs its own external_id.';
        END IF;
        RETURN jsonb_build_object('id', c.image_id, 'external_id', c.external_id, 'duplicate', true);
    END IF;
    img := core.add_image(project_id, storage_key, sha256, width, height, media_type, source_class, 'partner:' || k.prefix,
                          coalesce(metadata, '{}') - 'original_filename', NULL, consent_ref);
    INSERT INTO core.partner_case (organization_id, external_id, project_id, image_id, key_id, metadata)
    VALUES (k.organization_id, register_partner_image.external_id, project_id, (img ->> 'id')::bigint, k.id,
            coalesce(metadata, '{}') - 'original_filename');
    RETURN img || jsonb_build_object('external_id', external_id);
END
$$;
COMMENT ON FUNCTION api.register_partner_image(bigint, text, text, text, integer, integer, text, jsonb, text, text) IS
    'Partner key with images:write (through POST /projects/{id}/images with external_id): records an uploaded '
    'case (source_class: what the project''s work rules select on, e.g. dermoscopy). The same external_id again '
    'answers the same case (duplicate: true); with other bytes, 409.';

CREATE OR REPLACE FUNCTION api.partner_case(external_id text)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- pending while any read of the image is open; done with the approved results; rejected when every read was.
DECLARE
    c core.partner_case;
    k auth.api_key;
    open_items integer;
    done_items integer;
BEGIN
    SELECT * INTO c FROM core.partner_case x
     WHERE x.organization_id = (SELECT a.organization_id FROM auth.api_key a WHERE a.id = auth.key_id())
       AND x.external_id = partner_case.external_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'case % not found', external_id USING ERRCODE = 'P0002';
    END IF;
    BEGIN
        k := core.require_scope('results:read', c.project_id);
    EXCEPTION WHEN no_data_found THEN  -- a case of a project this key does not cover: like a missing one
        RAISE EXCEPTION 'case % not found', external_id USING ERRCODE = 'P0002';
    END;
    SELECT count(*) FILTER (WHERE w.status NOT IN ('done', 'rejected', 'cancelled')),
           count(*) FILTER (WHERE w.status = 'done')
      INTO open_items, done_items FROM core.work_item w WHERE w.image_id = c.image_id;
    RETURN jsonb_build_object(
        'external_id', c.external_id, 'project_id', c.project_id, 'image_id', c.image_id, 'received_at', c.created_at,
        'status', CASE WHEN open_items > 0 OR (open_items = 0 AND done_items = 0
                                               AND NOT EXISTS (SELECT 1 FROM core.work_item w
                                                                WHERE w.image_id = c.image_id
                                                                  AND w.status = 'rejected')) THEN 'pending'
                       WHEN done_items > 0 THEN 'done' ELSE 'rejected' END,
        'results', CASE WHEN open_items = 0 THEN (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'read', row_number, 'class', jsonb_build_object('code', n.code, 'name', n.name,
                                                                      'icd10', n.icd10, 'snomed_ct', n.snomed_ct),
                       'descriptors', r.content -> 'descriptors', 'description', r.content -> 'description',
                       'confidence', r.content -> 'confidence', 'regions', r.content -> 'regions',
                       'approved_at', w.updated_at) ORDER BY row_number), '[]')
              FROM (SELECT w.*, row_number() OVER (ORDER BY w.id) FROM core.work_item w
                     WHERE w.image_id = c.image_id AND w.status = 'done') w
              JOIN core.annotation_revision r ON r.item_id = w.id AND r.revision_seq = w.last_revision_seq
              LEFT JOIN core.taxonomy_node n ON n.id = (r.content ->> 'class')::bigint) ELSE '[]'::jsonb END);
END
$$;
COMMENT ON FUNCTION api.partner_case(text) IS
    'Partner key with results:read: a case by your external_id: status pending, done (with each approved read: '
    'class with ICD-10 and SNOMED CT codes, descriptors, description, confidence, regions) or rejected.';

GRANT EXECUTE ON FUNCTION api.create_api_key(bigint, text, bigint[], text[], timestamptz, integer),
                          api.list_api_keys(bigint), api.revoke_api_key(bigint), api.rotate_api_key(bigint)
    TO dl_admin;
GRANT EXECUTE ON FUNCTION api.key_info(), api.partner_case(text),
                          api.register_partner_image(bigint, text, text, text, integer, integer, text, jsonb, text, text)
    TO dl_partner;
