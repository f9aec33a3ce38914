-- File names are not data; uploads are asked for before any byte is read.
BEGIN;
SELECT plan(4);

SELECT * FROM tests.fixture(n_images => 0) \gset
SELECT tests.act_as(:admin, 'admin');
SELECT (api.register_image(:project, 'k/privacy', repeat('ab', 32), 10, 10, 'image/png',
                           metadata => '{"original_filename": "Doe_Jane_MRN7731945.jpg", "body_site": "back"}')
        ->> 'id')::bigint AS img \gset
SELECT tests.as_superuser();
SELECT is((SELECT metadata FROM core.image WHERE id = :img), '{"body_site": "back"}'::jsonb,
          'register_image keeps no file name, whoever sends one');
SELECT tests.act_as(:admin, 'admin');
SELECT is(api.upload_target(:project), jsonb_build_object('project_id', :project, 'partner', false, 'consent_required', false), 'the project''s admin may upload');
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok(format('SELECT api.upload_target(%s)', :project), '42501', NULL, 'an annotator may not');
SELECT tests.act_as(:outsider, 'admin');
SELECT throws_ok(format('SELECT api.upload_target(%s)', :project), 'P0002', NULL,
                 'another organization''s admin finds no such project');

SELECT * FROM finish();
ROLLBACK;
