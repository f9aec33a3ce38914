-- Personal description templates: private to their owner.
BEGIN;
SELECT plan(6);

SELECT * FROM tests.fixture(n_images => 0) \gset
SELECT tests.act_as(:a1, 'annotator');
SELECT is(api.save_template('naevus', 'Symmetric **reticular** network') ->> 'name', 'naevus', 'save a template');
SELECT is(api.save_template('naevus', 'Globular pattern') ->> 'body', 'Globular pattern', 'same name replaces it');
SELECT throws_ok($$SELECT api.save_template('  ', 'x')$$, '22023', NULL, 'a blank name is refused');
SELECT is(jsonb_array_length(api.my_templates()), 1, 'one template');
SELECT tests.act_as(:a2, 'annotator');
SELECT is(api.my_templates(), '[]'::jsonb, 'another annotator does not see it');
SELECT throws_ok($$SELECT api.delete_template('naevus')$$, 'P0002', NULL, 'nor delete it');

SELECT * FROM finish();
ROLLBACK;
