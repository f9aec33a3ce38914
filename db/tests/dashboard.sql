-- api.dashboard_context: what the metrics dashboard reads besides the views. The projects whose metrics the caller
-- may read, the project's settings, whether the caller administers it, and the names of its people: members, and
-- people its metrics count who have left it; never anyone else of the organization, never another organization's.
BEGIN;
SELECT plan(12);

SELECT * FROM tests.fixture(n_images => 2, per_image => 1) \gset
SELECT name AS project_name, organization_id AS org FROM core.project WHERE id = :project \gset
SELECT tests.user('ana-' || md5(random()::text) || '@t.org', '{analyst}') AS ana \gset
SELECT tests.join(:project, :ana);
-- someone of the organization who has no part in the project
SELECT tests.user('colleague-' || md5(random()::text) || '@t.org', '{annotator}') AS colleague \gset
INSERT INTO core.org_member (organization_id, user_id) VALUES (:org, :colleague);

-- a1 annotates one item, r1 approves it; a1 then leaves the project (their work, and their metrics, stay)
SELECT tests.act_as(:a1, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS item \gset
SELECT api.submit_annotation(:item, tests.content(:mel));
SELECT tests.act_as(:r1, 'reviewer');
SELECT api.approve((api.next_review(:project) -> 'item' ->> 'id')::bigint);
SELECT tests.as_superuser();
SELECT metrics.refresh_all('test');
SELECT tests.act_as(:admin, 'admin');
SELECT api.remove_project_member(:project, :a1);

SELECT tests.act_as(:admin, 'admin');
SELECT is(api.dashboard_context(:project) -> 'project',
          jsonb_build_object('id', :project, 'name', :'project_name', 'agreement_min_shared', 10,
                             'quality_strata', '["fitzpatrick", "body_site"]'::jsonb),
          'api.dashboard_context: the project''s name and the settings the charts need');
SELECT is(api.dashboard_context(:project) -> 'admin', 'true', 'api.dashboard_context: the admin administers it');
SELECT ok(api.dashboard_context(:project) -> 'projects' @> jsonb_build_array(jsonb_build_object(
              'id', :project, 'name', :'project_name')),
          'api.dashboard_context: the projects the admin may read metrics of');
SELECT is(api.dashboard_context() -> 'project' -> 'id', to_jsonb(:project),
          'api.dashboard_context: without a project, the first the caller may read');
SELECT set_eq(format($$SELECT (p ->> 'id')::bigint FROM jsonb_array_elements(api.dashboard_context(%s) -> 'people') p$$,
                     :project),
              format('VALUES (%s), (%s), (%s), (%s), (%s), (%s), (%s), (%s)', :admin, :a1, :a2, :a3, :r1, :r2, :r3,
                     :ana),
              'api.dashboard_context: the members, and who left but is counted in the metrics (a1); no one else');
SELECT is((SELECT p ->> 'display_name' FROM jsonb_array_elements(api.dashboard_context(:project) -> 'people') p
            WHERE (p ->> 'id')::bigint = :a1),
          (SELECT display_name FROM auth."user" WHERE id = :a1),
          'api.dashboard_context: people by display name');
SELECT is((SELECT count(*)::int FROM jsonb_array_elements(api.dashboard_context(:project) -> 'people') p
            WHERE p ? 'email'), 0, 'api.dashboard_context: names only, no email addresses');

SELECT tests.act_as(:ana, 'analyst');
SELECT is(api.dashboard_context(:project) -> 'admin', 'false',
          'api.dashboard_context: an analyst of the organization reads it, and is no admin of the project');
SELECT is(jsonb_array_length(api.dashboard_context(:project) -> 'people'), 8,
          'api.dashboard_context: the analyst sees the same names');

SELECT tests.act_as(:outsider, 'admin');
SELECT throws_ok(format('SELECT api.dashboard_context(%s)', :project), 'P0002', format('project %s not found', :project),
                 'api.dashboard_context: another organization''s admin finds no such project');
SELECT is(api.dashboard_context() -> 'project' -> 'id' = to_jsonb(:project), false,
          'api.dashboard_context: nor is it their first project');

SELECT tests.act_as(:a2, 'annotator');
SELECT throws_ok(format('SELECT api.dashboard_context(%s)', :project), '42501', NULL,
                 'api.dashboard_context: not for annotators');

SELECT * FROM finish();
ROLLBACK;
