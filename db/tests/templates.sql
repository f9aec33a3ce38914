-- Personal templates (annotators' descriptions, reviewers' comments): private to their owner.
BEGIN;
SELECT plan(9);

SELECT * FROM tests.fixture(n_images => 0) \gset
SELECT tests.act_as(:a1, 'annotator');
SELECT is(api.save_template('naevus', 'Symmetric **reticular** network') ->> 'name', 'naevus', 'save a template');
SELECT is(api.save_template('naevus', 'Globular pattern') ->> 'body', 'Globular pattern', 'same name replaces it');
SELECT throws_ok($$SELECT api.save_template('  ', 'x')$$, '22023', NULL, 'a blank name is refused');
SELECT is(jsonb_array_length(api.my_templates()), 1, 'one template');
SELECT tests.act_as(:a2, 'annotator');
SELECT is(api.my_templates(), '[]'::jsonb, 'another annotator does not see it');
SELECT throws_ok($$SELECT api.delete_template('naevus')$$, 'P0002', NULL, 'nor delete it');
SELECT tests.act_as(:r1, 'reviewer');
SELECT is(api.save_template('border', 'Please outline the whole lesion.') ->> 'name', 'border',
          'a reviewer keeps comment templates');
SELECT is(jsonb_array_length(api.my_templates()), 1, 'and sees only theirs');
SELECT tests.as_superuser();
UPDATE core.project_member SET reviewer = false WHERE user_id = :r2;
UPDATE core.org_member SET analyst = true WHERE user_id = :r2;
SELECT tests.act_as(:r2, 'analyst');
SELECT throws_ok($$SELECT api.save_template('x', 'y')$$, '42501', NULL, 'analysts have no templates');

SELECT * FROM finish();
ROLLBACK;
