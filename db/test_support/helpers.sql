-- Test-only helpers, loaded by scripts/test.sh into the throwaway database (never a migration).
CREATE SCHEMA tests;
GRANT USAGE ON SCHEMA tests TO PUBLIC;

-- Become a user exactly as the HTTP layer does: SQL role + claims, transaction-local.
CREATE FUNCTION tests.act_as(p_user bigint, p_role text) RETURNS void LANGUAGE sql AS $$
    SELECT set_config('role', 'dl_' || p_role, true),
           set_config('request.jwt.claims',
                      jsonb_build_object('sub', p_user, 'role', 'dl_' || p_role, 'request_id', 'req-test')::text, true);
$$;

CREATE FUNCTION tests.as_superuser() RETURNS void LANGUAGE sql AS $$
    SELECT set_config('role', 'none', true), set_config('request.jwt.claims', '', true);
$$;

-- A person, and the roles the test means them to have wherever it puts them (tests.join): roles are per project.
CREATE TABLE tests.intent (user_id bigint PRIMARY KEY, roles text[], expertise text[], level int);
GRANT ALL ON tests.intent TO PUBLIC;

CREATE FUNCTION tests.user(p_email text, p_roles text[], p_expertise text[] DEFAULT '{}', p_level int DEFAULT 1)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    id bigint;
BEGIN
    INSERT INTO auth."user" (email, display_name, password_hash)
    VALUES (p_email, split_part(p_email, '@', 1), crypt('correct horse battery', gen_salt('bf', 4)))
    RETURNING "user".id INTO id;
    INSERT INTO tests.intent VALUES (id, p_roles, p_expertise, p_level);
    RETURN id;
END
$$;

-- An organization, as the operator would create it.
CREATE FUNCTION tests.org(p_name text) RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO core.organization (name) VALUES (p_name) RETURNING id
$$;

-- Puts a person in a project (and its organization) with the roles tests.user gave them: admin becomes admin of
-- the project, analyst analyst of the organization.
CREATE FUNCTION tests.join(p_project bigint, p_user bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    i tests.intent;
BEGIN
    SELECT * INTO i FROM tests.intent WHERE user_id = p_user;
    INSERT INTO core.org_member (organization_id, user_id, analyst)
    SELECT p.organization_id, p_user, coalesce('analyst' = ANY (i.roles), false) FROM core.project p
     WHERE p.id = p_project
    ON CONFLICT DO NOTHING;
    INSERT INTO core.project_member (project_id, user_id, annotator, reviewer, admin, review_level, expertise)
    VALUES (p_project, p_user, coalesce('annotator' = ANY (i.roles), false),
            coalesce('reviewer' = ANY (i.roles), false), coalesce('admin' = ANY (i.roles), false),
            coalesce(i.level, 1), coalesce(i.expertise, '{}'))
    ON CONFLICT (project_id, user_id) DO UPDATE
       SET annotator = EXCLUDED.annotator, reviewer = EXCLUDED.reviewer, admin = EXCLUDED.admin,
           review_level = EXCLUDED.review_level, expertise = EXCLUDED.expertise;
END
$$;

-- A project of its own organization, created by p_admin (who becomes the organization's admin).
CREATE FUNCTION tests.project(p_admin bigint, p_name text, p_stages int DEFAULT 1) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    org bigint := tests.org('org-' || p_name);
    pid bigint;
BEGIN
    INSERT INTO core.org_member (organization_id, user_id, admin) VALUES (org, p_admin, true);
    PERFORM set_config('request.jwt.claims', jsonb_build_object('sub', p_admin)::text, true);
    pid := (api.create_project(p_name, '', p_stages, organization_id => org) ->> 'id')::bigint;
    PERFORM set_config('request.jwt.claims', '', true);
    RETURN pid;
END
$$;

-- A project with people, a small taxonomy, a descriptor schema, n images and one rule with items. Its admin
-- administers the project's own organization; outsider holds every role in a project of another organization.
CREATE FUNCTION tests.fixture(n_images int DEFAULT 6, stages int DEFAULT 1, per_image int DEFAULT 1,
                              max_items int DEFAULT 1000)
RETURNS TABLE (project bigint, admin bigint, a1 bigint, a2 bigint, a3 bigint, r1 bigint, r2 bigint, r3 bigint,
               rule bigint, mel bigint, nev bigint, img1 bigint, outsider bigint)
LANGUAGE plpgsql AS $$
DECLARE
    tag text := substr(md5(random()::text), 1, 8);
    u bigint;
    i int;
BEGIN
    admin := tests.user('admin-' || tag || '@t.org', '{admin}');
    a1 := tests.user('a1-' || tag || '@t.org', '{annotator}', '{dermoscopy}');
    a2 := tests.user('a2-' || tag || '@t.org', '{annotator}');
    a3 := tests.user('a3-' || tag || '@t.org', '{annotator}');
    r1 := tests.user('r1-' || tag || '@t.org', '{reviewer}', '{}', 1);
    r2 := tests.user('r2-' || tag || '@t.org', '{reviewer}', '{}', 2);
    r3 := tests.user('r3-' || tag || '@t.org', '{reviewer}', '{}', 2);
    outsider := tests.user('out-' || tag || '@t.org', '{annotator,reviewer,admin}');
    PERFORM tests.join(tests.project(tests.user('elsewhere-' || tag || '@t.org', '{admin}'), 'elsewhere-' || tag),
                       outsider);
    project := tests.project(admin, 'p-' || tag, stages);
    PERFORM set_config('request.jwt.claims', jsonb_build_object('sub', admin)::text, true);
    FOREACH u IN ARRAY ARRAY[a1, a2, a3, r1, r2, r3] LOOP
        PERFORM tests.join(project, u);
    END LOOP;
    PERFORM api.upsert_taxonomy_node(project, 'NEO', 'Neoplasms');
    mel := (api.upsert_taxonomy_node(project, 'MEL', 'Melanoma', 'NEO', '{"malignant melanoma"}', 'C43',
                                     '372244006', 'Urgent excision') ->> 'id')::bigint;
    nev := (api.upsert_taxonomy_node(project, 'NV', 'Melanocytic nevus', 'NEO', '{mole,naevus}', 'D22') ->> 'id')::bigint;
    PERFORM api.set_descriptor_schema(project, '[
        {"key": "colours", "kind": "multi", "options": ["brown", "black", "blue", "red", "white"], "required": true},
        {"key": "border", "kind": "single", "options": ["regular", "irregular"]},
        {"key": "diameter_mm", "kind": "number", "min": 0, "max": 200, "unit": "mm"},
        {"key": "ulcerated", "kind": "boolean"}]');
    rule := (api.create_work_rule(project, 'rule-' || tag, max_items,
                                  annotations_per_image => per_image) ->> 'id')::bigint;
    FOR i IN 1..n_images LOOP
        PERFORM api.register_image(project, 'k/' || tag || '/' || i, encode(sha256((tag || i)::bytea), 'hex'),
                                   1000, 800, 'image/jpeg', 'clinic', 'b1');
    END LOOP;
    SELECT min(im.id) INTO img1 FROM core.image im WHERE im.project_id = fixture.project;
    PERFORM set_config('request.jwt.claims', '', true);
    RETURN NEXT;
END
$$;

-- A valid annotation for the fixture's project.
CREATE FUNCTION tests.content(p_class bigint) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('class', p_class, 'descriptors', '{"colours": ["brown"], "diameter_mm": 6}'::jsonb,
                              'description', 'Asymmetric **pigmented** lesion', 'confidence', 'high',
                              'regions', '[{"type": "bbox", "x": 10, "y": 10, "w": 100, "h": 80, "label": "lesion"}]'::jsonb)
$$;

-- As p_user, takes every item next_item hands out in the project and submits for it p_by_rank -> k, k being its
-- image's rank among the project's images by id, from 0: what this annotator answers for each image.
CREATE FUNCTION tests.annotate_all(p_user bigint, p_project bigint, p_by_rank jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    it jsonb;
    n integer := 0;
BEGIN
    PERFORM tests.act_as(p_user, 'annotator');
    LOOP
        it := api.next_item(p_project) -> 'item';
        EXIT WHEN it IS NULL OR it = 'null'::jsonb;
        PERFORM api.submit_annotation((it ->> 'id')::bigint,
            p_by_rank -> (SELECT count(*)::integer - 1 FROM core.image i
                           WHERE i.project_id = p_project AND i.id <= (it -> 'image' ->> 'id')::bigint));
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- As p_reviewer, approves everything next_review hands out in the project; how many.
CREATE FUNCTION tests.approve_all(p_reviewer bigint, p_project bigint) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    it jsonb;
    n integer := 0;
BEGIN
    PERFORM tests.act_as(p_reviewer, 'reviewer');
    LOOP
        it := api.next_review(p_project) -> 'item';
        EXIT WHEN it IS NULL OR it = 'null'::jsonb;
        PERFORM api.approve((it ->> 'id')::bigint);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- As the annotator acting, next_item until it hands out an item (a gold check, where nothing else is left).
CREATE FUNCTION tests.until_gold(p_project bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    doc jsonb;
BEGIN
    FOR i IN 1..60 LOOP  -- at rate 0.5, 60 misses in a row has probability 2^-60
        doc := api.next_item(p_project);
        EXIT WHEN doc -> 'item' IS NOT NULL AND doc -> 'item' <> 'null'::jsonb;
    END LOOP;
    RETURN doc;
END
$$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tests TO PUBLIC;
