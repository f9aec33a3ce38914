-- Consent: a project that requires it refuses images without a reference; withdrawing a consent erases its images.
BEGIN;
SELECT plan(7);

SELECT * FROM tests.fixture(n_images => 0) \gset
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok(format('SELECT api.set_consent_required(%s, true)', :project), '42501', NULL,
                 'an annotator cannot change it');
SELECT tests.act_as(:admin, 'admin');
SELECT api.set_consent_required(:project, true);
SELECT throws_ok(format($$SELECT api.register_image(%s, 'k/c1', %L, 10, 10, 'image/png')$$, :project, repeat('c', 64)),
                 '22023', 'consent_ref: this project requires a consent reference for every image',
                 'an image without a consent reference is refused');
SELECT (api.register_image(:project, 'k/c2', repeat('d', 64), 10, 10, 'image/png', consent_ref => 'FORM-17')
        ->> 'id')::bigint AS img \gset
SELECT is((SELECT consent_ref FROM core.image WHERE id = :img), 'FORM-17', 'with one it is kept with the image');
SELECT is(api.upload_target(:project) ->> 'consent_required', 'true', 'the upload route learns it before reading');
SELECT organization_id AS org FROM core.project WHERE id = :project \gset
SELECT tests.act_as(:outsider, 'admin');
SELECT throws_ok(format($$SELECT api.withdraw_consent(%s, 'FORM-17')$$, :org), 'P0002', NULL,
                 'nobody outside the organization withdraws its consents');
SELECT tests.act_as(:admin, 'admin');
SELECT is((api.withdraw_consent(NULL, 'FORM-17') ->> 'images_erased')::int, 1, 'withdrawing the consent erases its images');
SELECT tests.as_superuser();
SELECT ok((SELECT status = 'removed' AND erased_at IS NOT NULL AND consent_ref = 'FORM-17' IS NOT TRUE
             FROM core.image WHERE id = :img), 'erased');

SELECT * FROM finish();
ROLLBACK;
