-- Roles and grants: the schemas, extensions, group roles and default privileges of V1, and who may execute each
-- api function: one explicit grant per function and role, nothing for PUBLIC.
BEGIN;
SELECT plan(21);

SELECT has_schema(s) FROM unnest(ARRAY['core', 'api', 'auth', 'audit', 'metrics']) AS s;
SELECT has_extension('pgcrypto');
SELECT has_extension('citext');
SELECT has_extension('pg_trgm');

SELECT is((SELECT count(*)::int FROM pg_roles r
            WHERE r.rolname IN ('dl_anon', 'dl_annotator', 'dl_reviewer', 'dl_admin', 'dl_analyst', 'dl_member')
              AND NOT r.rolcanlogin), 6, 'six NOLOGIN group roles');
SELECT ok((SELECT rolcanlogin AND NOT rolinherit AND NOT rolsuper FROM pg_roles WHERE rolname = 'dl_authenticator'),
          'dl_authenticator logs in, does not inherit, is no superuser');
SELECT is((SELECT count(*)::int FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
            JOIN pg_roles u ON u.oid = m.member
           WHERE u.rolname = 'dl_authenticator'
             AND g.rolname IN ('dl_anon', 'dl_annotator', 'dl_reviewer', 'dl_admin', 'dl_analyst', 'dl_member')), 6,
          'the authenticator may switch to each group role');

SELECT function_privs_are('api', 'health', ARRAY[]::text[], 'dl_anon', ARRAY['EXECUTE'],
                          'api.health: dl_anon may execute it');
SELECT ok(NOT has_function_privilege('public', 'api.health()', 'EXECUTE'), 'api.health: PUBLIC cannot execute it');

-- health answers as the HTTP layer calls it: anonymous role, empty claims
SET LOCAL ROLE dl_anon;
SELECT is((api.health() ->> 'schema_version') IS NOT NULL, true, 'api.health: reports a schema version to dl_anon');
RESET ROLE;

-- Who may execute each api function
SELECT set_eq($$
    SELECT p.proname || ':' || r.rolname
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     CROSS JOIN pg_roles r
     WHERE n.nspname = 'api' AND r.rolname LIKE 'dl\_%' AND r.rolname <> 'dl_authenticator'
       AND has_function_privilege(r.oid, p.oid, 'EXECUTE')$$,
  $$ SELECT f || ':dl_' || r FROM (VALUES
        ('health', '{anon,annotator,reviewer,admin,analyst}'::text[]),
        ('login', '{anon}'), ('me', '{annotator,reviewer,admin,analyst,member}'),
        ('logout', '{annotator,reviewer,admin,analyst,member}'),
        ('change_password', '{annotator,reviewer,admin,analyst,member}'),
        ('set_password', '{admin}'),
        ('create_user', '{admin}'), ('set_user_active', '{admin}'), ('set_vacation', '{annotator,reviewer,admin,member}'),
        ('create_project', '{admin}'), ('add_project_member', '{admin}'), ('register_image', '{admin}'),
        ('set_project_roles', '{admin}'), ('upload_target', '{admin,partner}'),
        ('create_api_key', '{admin}'), ('list_api_keys', '{admin}'), ('revoke_api_key', '{admin}'),
        ('rotate_api_key', '{admin}'), ('key_info', '{partner}'), ('partner_case', '{partner}'),
        ('register_partner_image', '{partner}'),
        ('create_webhook', '{admin}'), ('list_webhooks', '{admin}'), ('set_webhook_active', '{admin}'),
        ('test_webhook', '{admin}'), ('remove_project_member', '{admin}'),
        ('create_organization', '{admin}'), ('list_organizations', '{admin}'), ('add_organization_member', '{admin}'),
        ('set_organization_roles', '{admin}'), ('remove_organization_member', '{admin}'),
        ('upsert_taxonomy_node', '{admin}'), ('set_descriptor_schema', '{admin}'),
        ('search_taxonomy', '{annotator,reviewer,admin}'), ('descriptor_schema', '{annotator,reviewer,admin}'),
        ('taxonomy_tree', '{annotator,reviewer,admin}'),
        ('region_labels', '{annotator,reviewer,admin}'), ('set_region_labels', '{admin}'),
        ('region_measurements', '{annotator,reviewer,admin}'), ('agreement_interval', '{admin,analyst}'),
        ('set_quality_strata', '{admin}'), ('set_skip_minutes', '{admin}'),
        ('create_work_rule', '{admin}'), ('update_work_rule', '{admin}'), ('generate_work_items', '{admin}'),
        ('preview_work_rule', '{admin}'),
        ('next_item', '{annotator}'), ('heartbeat', '{annotator}'), ('save_draft', '{annotator}'),
        ('submit_annotation', '{annotator}'), ('reject_image', '{annotator}'), ('release_item', '{annotator}'),
        ('my_queue', '{annotator}'), ('item_detail', '{annotator,reviewer,admin}'),
        ('segment_source', '{annotator,reviewer,admin}'),
        ('next_review', '{reviewer}'), ('approve', '{reviewer}'), ('request_changes', '{reviewer}'),
        ('set_item_priority', '{admin}'), ('reassign_item', '{admin}'), ('reassign_user_items', '{admin}'), ('cancel_item', '{admin}'),
        ('resolve_flag', '{admin}'), ('open_flags', '{admin}'),
        ('image_file', '{annotator,reviewer,admin}'), ('image_access', '{admin,analyst}'), ('erase_image', '{admin}'), ('erase_person', '{admin}'), ('set_retention', '{admin}'), ('set_consent_required', '{admin}'), ('withdraw_consent', '{admin}'), ('save_template', '{annotator,reviewer}'), ('my_templates', '{annotator,reviewer}'),
        ('delete_template', '{annotator,reviewer}'),
        ('set_gold', '{admin}'), ('create_consistency_rule', '{admin}'), ('set_consistency_rule_active', '{admin}'),
        ('refresh_metrics', '{admin}'), ('metrics', '{admin,analyst}'), ('dashboard_context', '{admin,analyst}'),
        ('rerun_ai', '{admin}'), ('ai_status', '{admin}'), ('configure_red_flags', '{admin}'),
        ('set_quality_thresholds', '{admin}'),
        ('project_overview', '{admin}'), ('list_users', '{admin}'),
        ('export_manifest', '{admin,partner}'), ('import_labels', '{admin}'), ('export_page', '{admin,partner}'), ('export_categories', '{admin,partner}'),
        ('dicom_deid_key', '{admin}'), ('set_dicomweb_source', '{admin}'), ('dicomweb_source', '{admin}')
     ) AS g(f, roles), unnest(roles) AS r $$,
  'each api function is executable by exactly the roles that need it');

SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'api' AND has_function_privilege('public', p.oid, 'EXECUTE')), 0,
          'PUBLIC executes no api function');
SELECT is((SELECT count(*)::int FROM (SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                                        WHERE n.nspname = 'api' GROUP BY p.proname HAVING count(*) > 1) o), 0,
          'one function per name: no overloads');
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname IN ('api', 'core', 'auth', 'ai')
              AND p.oid NOT IN ('auth.claims()'::regprocedure, 'auth.uid()'::regprocedure,
                                'auth.sees_work_item(bigint, bigint, bigint, core.item_status, bigint, bigint)'::regprocedure,
                                'auth.key_id()'::regprocedure,
                                'core.rule_takes(core.image_status, text, text, jsonb, text[], text, jsonb)'::regprocedure)
              AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%')), 0,
          'every api, core and auth function pins its search_path (but the five inlined, fully qualified ones)');
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'api' AND obj_description(p.oid, 'pg_proc') IS NULL), 0,
          'every api function has a COMMENT for its caller');

SELECT set_eq($$
    SELECT DISTINCT r.rolname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace CROSS JOIN pg_roles r
     WHERE n.nspname = 'ai' AND r.rolname LIKE 'dl\_%' AND r.rolname <> 'dl_authenticator'
       AND has_function_privilege(r.oid, p.oid, 'EXECUTE')$$, $$VALUES ('dl_ai_worker')$$,
  'the AI worker''s functions are executable by its role alone');

SELECT * FROM tests.fixture(n_images => 1) \gset
SELECT tests.act_as(:a1, 'analyst');
SELECT throws_ok(format('SELECT api.next_item(%s)', :project), '42501', NULL,
                 'api.next_item: an analyst cannot call it (nor any workflow function)');

SELECT * FROM finish();
ROLLBACK;
