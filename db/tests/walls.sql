-- The walls, tested as an attacker would, for every api function read from the catalog (a function added later is
-- covered without touching this file): called with the ids of another organization's project, people, items,
-- images, rules and flags - and of another project of the same organization - by someone who holds every role
-- where they belong, under every SQL role the function is granted to. Each call must be refused as not found or
-- not allowed, change nothing of the victim's (a checksum of their rows before and after, taken inside the call's
-- own subtransaction), and a call that succeeds (functions about the caller alone) must not reveal them.
BEGIN;
SELECT * FROM no_plan();
SET LOCAL jit = off;  -- the checksum query plans above the JIT threshold (a temp table without statistics): 1 s of compiling per call

-- The victim: organization A's project with work in every state.
SELECT * FROM tests.fixture(n_images => 4, per_image => 1) \gset
SELECT organization_id AS org_a, name AS project_a_name FROM core.project WHERE id = :project \gset
SELECT email AS victim_email FROM auth."user" WHERE id = :a1 \gset
SELECT tests.act_as(:a1, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS item_held \gset
SELECT api.save_draft(:item_held, tests.content(:mel));
SELECT tests.act_as(:a2, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS item_review \gset
SELECT api.submit_annotation(:item_review, tests.content(:nev));
SELECT tests.act_as(:a3, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS item_flagged \gset
SELECT api.reject_image(:item_flagged, 'bad_quality', 'blurred');
SELECT tests.act_as(:admin, 'admin');
SELECT (api.create_consistency_rule(:project, :mel, 'colours', 'not_equals', '["brown"]', 'check') ->> 'id')::bigint
    AS consistency_rule \gset
SELECT tests.as_superuser();
SELECT id AS flag FROM core.work_item_flag WHERE item_id = :item_flagged \gset
SELECT image_id AS image_review FROM core.work_item WHERE id = :item_review \gset

-- Attacker 1: another organization, holding every role in its own project (and analyst there).
SELECT tests.user('mallory-' || md5(random()::text) || '@t.org', '{annotator,reviewer,admin,analyst}') AS mallory \gset
SELECT tests.project(:mallory, 'mallory-' || md5(random()::text)) AS project_m \gset
SELECT tests.join(:project_m, :mallory);
-- Attacker 2: the same organization, every role in another project of it (not an organization admin).
SELECT tests.user('trudy-' || md5(random()::text) || '@t.org', '{annotator,reviewer,admin}') AS trudy \gset
SELECT tests.act_as(:admin, 'admin');
SELECT (api.create_project('sibling-' || md5(random()::text)) ->> 'id')::bigint AS project_sibling \gset
SELECT tests.as_superuser();
SELECT tests.join(:project_sibling, :trudy);
-- Attackers 3 and 4: partner keys with every scope, of the other organization and of the sibling project.
INSERT INTO auth.api_key (organization_id, name, prefix, secret_sha256, project_ids, scopes, expires_at)
SELECT p.organization_id, 'walls', 'dl_' || substr(md5(random()::text), 1, 8), sha256('x'::bytea), ARRAY[p.id],
       '{images:write,results:read,export:read}', now() + interval '1 day'
  FROM core.project p WHERE p.id IN (:project_m, :project_sibling) ORDER BY p.id;
SELECT id AS key_m FROM auth.api_key WHERE :project_m = ANY (project_ids) \gset
SELECT id AS key_sibling FROM auth.api_key WHERE :project_sibling = ANY (project_ids) \gset
-- a partner's case of the victim's project
INSERT INTO core.partner_case (organization_id, external_id, project_id, image_id)
VALUES (:org_a, 'victim-case', :project, :image_review);
-- and a webhook of the victim's organization
INSERT INTO core.webhook (organization_id, url, events, secret) VALUES (:org_a, 'https://victim.example/hook',
                                                                        '{item.done}', 'victim-secret')
RETURNING id AS victim_webhook \gset

-- Everything of organization A an attacker must not change, as one checksum.
CREATE TEMP TABLE victim AS SELECT :org_a::bigint AS org, :project::bigint AS project;
CREATE FUNCTION pg_temp.victim_checksum() RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(p::text, ',' ORDER BY p.id) FROM core.project p, victim v WHERE p.organization_id = v.org),
        (SELECT string_agg(o::text, ',' ORDER BY o.user_id) FROM core.org_member o, victim v WHERE o.organization_id = v.org),
        (SELECT string_agg(m::text, ',' ORDER BY m.user_id) FROM core.project_member m, victim v WHERE m.project_id = v.project),
        (SELECT string_agg(concat_ws(':', u.id, u.email, u.display_name, u.password_hash, u.active, u.on_vacation,
                                     u.operator, u.locked_until), ',' ORDER BY u.id)
           FROM auth."user" u, victim v
          WHERE u.id IN (SELECT user_id FROM core.org_member WHERE organization_id = v.org)),
        (SELECT string_agg(s.id || ':' || coalesce(s.revoked_at::text, ''), ',' ORDER BY s.id)
           FROM auth.session s, victim v
          WHERE s.user_id IN (SELECT user_id FROM core.org_member WHERE organization_id = v.org)),
        (SELECT string_agg(w::text, ',' ORDER BY w.id) FROM core.work_item w, victim v WHERE w.project_id = v.project),
        (SELECT string_agg(d::text, ',' ORDER BY d.item_id) FROM core.annotation_draft d JOIN core.work_item w ON w.id = d.item_id, victim v WHERE w.project_id = v.project),
        (SELECT count(*)::text FROM core.annotation_revision r JOIN core.work_item w ON w.id = r.item_id, victim v WHERE w.project_id = v.project),
        (SELECT count(*)::text FROM core.review r JOIN core.work_item w ON w.id = r.item_id, victim v WHERE w.project_id = v.project),
        (SELECT string_agg(f::text, ',' ORDER BY f.id) FROM core.work_item_flag f JOIN core.work_item w ON w.id = f.item_id, victim v WHERE w.project_id = v.project),
        (SELECT string_agg(i::text, ',' ORDER BY i.id) FROM core.image i, victim v WHERE i.project_id = v.project),
        (SELECT string_agg(t::text, ',' ORDER BY t.id) FROM core.taxonomy_node t, victim v WHERE t.project_id = v.project),
        (SELECT string_agg(f::text, ',' ORDER BY f::text) FROM core.descriptor_field f, victim v WHERE f.project_id = v.project),
        (SELECT string_agg(r::text, ',' ORDER BY r.id) FROM core.work_rule r, victim v WHERE r.project_id = v.project),
        (SELECT string_agg(c::text, ',' ORDER BY c.id) FROM core.consistency_rule c, victim v WHERE c.project_id = v.project),
        (SELECT string_agg(g::text, ',' ORDER BY g.image_id) FROM core.gold_standard g, victim v WHERE g.project_id = v.project),
        (SELECT string_agg(k::text, ',') FROM core.project_deid k, victim v WHERE k.project_id = v.project),
        (SELECT count(*)::text FROM core.ai_job j JOIN core.image i ON i.id = j.image_id, victim v WHERE i.project_id = v.project),
        (SELECT string_agg(h::text, ',' ORDER BY h.id) FROM core.webhook h, victim v WHERE h.organization_id = v.org),
        (SELECT count(*)::text FROM core.webhook_delivery d JOIN core.webhook h ON h.id = d.webhook_id, victim v WHERE h.organization_id = v.org),
        (SELECT string_agg(k.id || ':' || coalesce(k.revoked_at::text, ''), ',' ORDER BY k.id) FROM auth.api_key k, victim v WHERE k.organization_id = v.org),
        (SELECT string_agg(c::text, ',' ORDER BY c.external_id) FROM core.partner_case c, victim v WHERE c.organization_id = v.org)))
$$;

-- A value for each argument: the victim's ids where the argument names one, something well-formed otherwise.
CREATE TEMP TABLE target (arg text PRIMARY KEY, val text);
INSERT INTO target VALUES
    ('project_id', :project), ('item_id', :item_review), ('user_id', :a1), ('image_id', :image_review),
    ('rule_id', :rule), ('flag_id', :flag), ('organization_id', :org_a), ('email', :'victim_email'),
    ('from_user', :a1), ('to_user', :a2), ('external_id', 'victim-case'), ('key_id', :key_sibling),
    ('webhook_id', :victim_webhook);

CREATE FUNCTION pg_temp.attack(p_fn regprocedure, p_user bigint, p_role text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    f record;
    args text[] := '{}';
    i int;
    v text;
    has_target boolean := false;
    before text := pg_temp.victim_checksum();
    answer text;
    outcome text;
BEGIN
    SELECT p.proname, p.proargnames, string_to_array(oidvectortypes(p.proargtypes), ', ') AS types, p.pronargs,
           p.pronargdefaults INTO f
      FROM pg_proc p WHERE p.oid = p_fn;
    FOR i IN 1 .. f.pronargs LOOP
        SELECT t.val INTO v FROM target t WHERE t.arg = f.proargnames[i];
        IF f.proname = 'set_consistency_rule_active' AND f.proargnames[i] = 'rule_id' THEN
            v := current_setting('walls.consistency_rule');
        ELSIF f.proname IN ('resolve_flag') AND f.proargnames[i] = 'resolution' THEN
            v := 'restore';
        END IF;
        IF v IS NOT NULL THEN
            -- a project admin may read their organization's directory (names, emails), never project A's roles
            has_target := NOT (f.proname = 'list_users' AND p_user = current_setting('walls.trudy')::bigint);
        ELSIF i > f.pronargs - f.pronargdefaults THEN
            CONTINUE;  -- optional and not a target: left to its default
        ELSE
            v := CASE f.types[i] WHEN 'jsonb' THEN '{}' WHEN 'boolean' THEN 'true' WHEN 'text[]' THEN '{}'
                                       WHEN 'bigint[]' THEN '{}' WHEN 'numeric' THEN '0.5'
                                       WHEN 'integer' THEN '1' WHEN 'bigint' THEN '1' ELSE 'x' END;
        END IF;
        args := args || format('%I => %L::%s', f.proargnames[i], v, f.types[i]);
    END LOOP;
    BEGIN
        IF p_role = 'partner' THEN  -- p_user is a key id: act as the app does for a key request
            PERFORM set_config('role', 'dl_partner', true),
                    set_config('request.jwt.claims', jsonb_build_object('key_id', p_user, 'request_id', 'walls')::text,
                               true);
        ELSE
            PERFORM tests.act_as(p_user, p_role);
        END IF;
        BEGIN
            EXECUTE format('SELECT api.%I(%s)::text', f.proname, array_to_string(args, ', ')) INTO answer;
            outcome := 'answered';
        EXCEPTION WHEN OTHERS THEN
            outcome := CASE WHEN SQLSTATE IN ('P0002', '42501') THEN 'refused' ELSE 'error ' || SQLSTATE || ': ' || SQLERRM END;
        END;
        PERFORM tests.as_superuser();
        IF pg_temp.victim_checksum() IS DISTINCT FROM before THEN
            outcome := 'CHANGED the victim''s data (' || outcome || ')';
        ELSIF outcome <> 'answered' AND NOT has_target THEN
            outcome := 'refused';  -- a function about the caller alone refused bad input (change_password): fine
        ELSIF outcome = 'answered' AND has_target THEN
            outcome := 'ANSWERED with the victim''s ids: ' || left(answer, 200);
        ELSIF outcome = 'answered' AND ((answer LIKE '%' || current_setting('walls.victim_email') || '%'
                                         AND f.proname <> 'list_users')
                                        OR answer LIKE '%"project_id": ' || current_setting('walls.project') || ',%'
                                        OR answer LIKE '%"' || current_setting('walls.project_name') || '"%') THEN
            outcome := 'REVEALED the victim: ' || left(answer, 200);
        ELSIF outcome = 'answered' THEN
            outcome := 'refused';  -- about the caller alone (me, my_templates, ...), revealing nothing
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'TW001', MESSAGE = outcome;  -- undo whatever the call did
    EXCEPTION WHEN SQLSTATE 'TW001' THEN
        PERFORM tests.as_superuser();
        RETURN SQLERRM;
    END;
END
$$;

SELECT set_config('walls.consistency_rule', :'consistency_rule', true),
       set_config('walls.victim_email', :'victim_email', true),
       set_config('walls.project_name', :'project_a_name', true),
       set_config('walls.project', :'project', true), set_config('walls.trudy', :'trudy', true);

-- Every api function, every attacker, every SQL role the function is granted to (anonymous: below).
SELECT is(pg_temp.attack(p.oid::regprocedure, a.who, r.role), 'refused',
          format('%s as %s from %s', p.proname, r.role, a.label))
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 CROSS JOIN (VALUES (:mallory::bigint, 'another organization'), (:trudy::bigint, 'another project of the organization')) a(who, label)
 CROSS JOIN (VALUES ('annotator'), ('reviewer'), ('admin'), ('analyst'), ('member')) r(role)
 WHERE n.nspname = 'api' AND p.proname NOT IN ('login', 'health')
   AND has_function_privilege('dl_' || r.role, p.oid, 'EXECUTE')
 ORDER BY p.proname, a.label, r.role;

-- Partner keys: every function granted to dl_partner, with the victim's ids.
SELECT is(pg_temp.attack(p.oid::regprocedure, a.key, 'partner'), 'refused', format('%s as a key of %s', p.proname, a.label))
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 CROSS JOIN (VALUES (:key_m::bigint, 'another organization'), (:key_sibling::bigint, 'another project of the organization')) a(key, label)
 WHERE n.nspname = 'api' AND has_function_privilege('dl_partner', p.oid, 'EXECUTE') AND p.proname <> 'key_info'
 ORDER BY p.proname, a.label;

SELECT ok((SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'api') >= 65,
          'the matrix covers the whole catalog (65 functions or more)');

SELECT * FROM finish();
ROLLBACK;
