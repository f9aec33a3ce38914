-- Partner keys, cases, webhooks and the SQL rate limiter.
BEGIN;
SELECT plan(31);

SELECT * FROM tests.fixture(n_images => 0, per_image => 1) \gset
SELECT organization_id AS org FROM core.project WHERE id = :project \gset
SELECT tests.project(:outsider, 'other-' || md5(random()::text)) AS other_project \gset

-- keys: made by the organization's admin only, for its own projects; the secret is returned once, stored hashed
SELECT tests.act_as(:admin, 'admin');
SELECT api.create_api_key(:org, 'Teledermatology partner', ARRAY[:project]::bigint[], '{images:write,results:read}',
                          daily_quota => 3) AS made \gset
SELECT ok((:'made'::jsonb ->> 'key') ~ '^dl_[a-z0-9]{8}_[a-z0-9]{32}$', 'the key is shown once, in its format');
SELECT (:'made'::jsonb ->> 'id')::bigint AS key_id, :'made'::jsonb ->> 'key' AS secret \gset
SELECT tests.as_superuser();
SELECT is((SELECT secret_sha256 FROM auth.api_key WHERE id = :key_id), digest(:'secret', 'sha256'),
          'only its SHA-256 is stored');
SELECT is((SELECT count(*)::int FROM auth.api_key WHERE position(:'secret' IN row(api_key.*)::text) > 0), 0,
          'the secret itself is nowhere in the row');
SELECT tests.act_as(:admin, 'admin');
SELECT throws_ok(format($$SELECT api.create_api_key(%s, 'x', ARRAY[%s]::bigint[], '{images:write}')$$, :org, :other_project),
                 '22023', NULL, 'a key only for projects of the organization');
SELECT throws_ok(format($$SELECT api.create_api_key(%s, 'x', ARRAY[%s]::bigint[], '{admin:all}')$$, :org, :project),
                 '22023', NULL, 'known scopes only');
SELECT ok(NOT (api.list_api_keys(:org)::text LIKE '%' || :'secret' || '%'), 'listing keys never shows a secret');
SELECT tests.act_as(:outsider, 'admin');
SELECT throws_ok(format('SELECT api.revoke_api_key(%s)', :key_id), 'P0002', NULL,
                 'another organization''s admin finds no such key');

-- a request with the key: proven, counted, audited; an unknown or altered key is refused
SELECT tests.as_superuser();
SELECT is(auth.key_request(:'secret', '{dl_partner}', 'key_info') ->> 'key_id', :'key_id', 'the key proves itself');
SELECT throws_ok(format($$SELECT auth.key_request(%L, '{dl_partner}', 'x')$$, left(:'secret', 40) || 'xxxx'), 'PT401',
                 NULL, 'an altered secret is refused');
SELECT throws_ok(format($$SELECT auth.key_request(%L, '{dl_admin}', 'x')$$, :'secret'), '42501', NULL,
                 'a key calls only what is granted to partners');
SELECT is((SELECT count(*)::int FROM audit.event WHERE action = 'api_key_use' AND entity_id = :key_id), 1,
          'each use is audited');
SELECT lives_ok(format($$SELECT auth.key_request(%L, '{dl_partner}', 'x')$$, :'secret'), 'second use today');
SELECT lives_ok(format($$SELECT auth.key_request(%L, '{dl_partner}', 'x')$$, :'secret'), 'third use today');
SELECT throws_ok(format($$SELECT auth.key_request(%L, '{dl_partner}', 'x')$$, :'secret'), 'PT429', NULL,
                 'the fourth use is over the daily quota of 3');
UPDATE auth.api_key_day SET requests = 0 WHERE key_id = :key_id;

-- cases: idempotent on the organization's external id; results when done; outside the key: not found
SELECT set_config('role', 'dl_partner', true),
       set_config('request.jwt.claims', jsonb_build_object('key_id', :key_id)::text, true);
SELECT api.register_partner_image(:project, 'CASE-1', 'k/p1', repeat('a', 64), 100, 100, 'image/png',
                                  '{"site": "forearm", "original_filename": "Doe_Jane.jpg"}') AS c1 \gset
SELECT is((:'c1'::jsonb ->> 'duplicate')::boolean, false, 'a new case');
SELECT is(api.register_partner_image(:project, 'CASE-1', 'k/p1', repeat('a', 64), 100, 100, 'image/png') ->> 'id',
          :'c1'::jsonb ->> 'id', 'the same external id again answers the same case');
SELECT throws_ok(format($$SELECT api.register_partner_image(%s, 'CASE-1', 'k/p2', %L, 100, 100, 'image/png')$$,
                        :project, repeat('b', 64)), 'PT409', NULL, 'the same external id with other bytes is a conflict');
SELECT throws_ok(format($$SELECT api.register_partner_image(%s, 'CASE-2', 'k/p3', %L, 100, 100, 'image/png')$$,
                        :other_project, repeat('c', 64)), 'P0002', NULL, 'a project outside the key does not exist');
SELECT is(api.partner_case('CASE-1') ->> 'status', 'pending', 'the case waits for its annotation');
SELECT throws_ok($$SELECT api.partner_case('NOPE')$$, 'P0002', NULL, 'an unknown case');
SELECT throws_ok(format('SELECT api.export_categories(%s)', :project), '42501', NULL,
                 'a scope the key lacks (export:read) is not allowed');
SELECT tests.as_superuser();
SELECT is((SELECT metadata FROM core.partner_case WHERE external_id = 'CASE-1'), '{"site": "forearm"}'::jsonb,
          'a partner''s metadata keeps no file name');

-- webhooks: https (or loopback http) only; an event queues one delivery per subscribed webhook; backoff in SQL
SELECT tests.act_as(:admin, 'admin');
SELECT throws_ok(format($$SELECT api.create_webhook(%s, 'http://partner.example/hook', '{item.done}')$$, :org),
                 '22023', NULL, 'plain http only to loopback');
SELECT api.create_webhook(:org, 'http://127.0.0.1:9/hook', '{item.done,item.rejected,image.flagged}') AS hook \gset
SELECT ok(length(:'hook'::jsonb ->> 'secret') = 64, 'the signing secret is shown once');
SELECT tests.as_superuser();
SELECT core.enqueue_event(:org, 'item.done', '{"item_id": 1}') AS queued \gset
SELECT is(:queued, 1, 'an event queues a delivery for the subscribed webhook');
SELECT max(id) AS delivery FROM core.webhook_delivery \gset
SET LOCAL role dl_ai_worker;
SELECT is(jsonb_array_length(ops.claim_webhook_deliveries(10, 60)), 1, 'the worker claims it');
SELECT is(ops.report_webhook_delivery(:delivery, 500, 'answered 500'), 'retry',
          'a 500 is retried');
RESET role;
SELECT ok((SELECT next_attempt_at > now() + interval '5 seconds' AND status = 'pending'
             FROM core.webhook_delivery ORDER BY id DESC LIMIT 1), 'later, with backoff');

-- the rate limiter: one bucket, shared by whoever asks
SELECT is(auth.rate_take('{t:x}', 2, 0.001), 0::float8, 'first token');
SELECT is(auth.rate_take('{t:x}', 2, 0.001), 0::float8, 'second token');
SELECT ok(auth.rate_take('{t:x}', 2, 0.001) > 100, 'the third waits for the refill');

SELECT * FROM finish();
ROLLBACK;
