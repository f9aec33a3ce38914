-- work_rule.items (V18): what max_items limits, kept by triggers instead of counted at every upload.
BEGIN;
SELECT plan(7);

SELECT * FROM tests.fixture(n_images => 4, per_image => 2, max_items => 10) \gset
CREATE TEMP VIEW counted AS
    SELECT r.id, r.items AS kept, (SELECT count(*)::int FROM core.work_item w WHERE w.rule_id = r.id
                                    AND w.status <> 'cancelled' AND NOT w.gold_check) AS actual
      FROM core.work_rule r;
GRANT SELECT ON counted TO PUBLIC;

SELECT is((SELECT kept FROM counted WHERE id = :rule), 8, 'generation counted: 4 images x 2');
SELECT tests.act_as(:admin, 'admin');
SELECT api.register_image(:project, 'k/extra', repeat('e', 64), 10, 10, 'image/png');
SELECT is((SELECT kept FROM counted WHERE id = :rule), 10, 'an upload adds its items');
SELECT api.register_image(:project, 'k/extra2', repeat('f', 64), 10, 10, 'image/png');
SELECT is((SELECT kept FROM counted WHERE id = :rule), 10, 'a full rule takes no more (whole images only)');

SELECT id AS victim FROM core.work_item WHERE rule_id = :rule AND status = 'new' ORDER BY id LIMIT 1 \gset
SELECT api.cancel_item(:victim, 'not needed');
SELECT is((SELECT kept FROM counted WHERE id = :rule), 9, 'a cancelled item no longer counts');

-- a gold check is not limited by max_items; inserting one changes nothing
SELECT tests.as_superuser();
INSERT INTO core.work_item (project_id, image_id, rule_id, slot, gold_check)
SELECT project_id, image_id, rule_id, 9, true FROM core.work_item WHERE id = :victim;
SELECT is((SELECT kept FROM counted WHERE id = :rule), 9, 'gold checks do not count');

-- and the kept count equals a count of the items for every rule of the database
SELECT is((SELECT count(*)::int FROM counted WHERE kept <> actual), 0, 'kept = counted, every rule');
-- items are not deleted by any api function; if a DBA deletes one, the count follows
DELETE FROM core.work_item WHERE id = (SELECT max(id) FROM core.work_item WHERE rule_id = :rule AND status = 'new'
                                                                           AND NOT gold_check);
SELECT is((SELECT kept FROM counted WHERE id = :rule), 8, 'a deleted item no longer counts');

SELECT * FROM finish();
ROLLBACK;
