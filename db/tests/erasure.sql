-- Erasure and retention: tombstones instead of content, the image's objects queued for deletion, a person
-- pseudonymised with their work kept, retention applied by the scheduler, a removed image's bytes purged.
BEGIN;
SELECT plan(16);

SELECT * FROM tests.fixture(n_images => 3) \gset
SELECT tests.act_as(:a1, 'annotator');
SELECT (api.next_item(:project) -> 'item') AS it \gset
SELECT (:'it'::jsonb ->> 'id')::bigint AS item, (:'it'::jsonb -> 'image' ->> 'id')::bigint AS img \gset
SELECT api.submit_annotation(:item, tests.content(:mel) || '{"description": "PLANTED-DESCRIPTION"}');
SELECT tests.act_as(:r1, 'reviewer');
SELECT api.next_review(:project);
SELECT api.approve(:item, 'PLANTED-COMMENT');

-- the AI's derived files of the image: a standardised crop and a segment embedding (a working copy of it)
SELECT tests.as_superuser();
INSERT INTO core.ai_suggestion (image_id, stage, model_name, model_version, payload, latency_ms)
VALUES (:img, 'crop', 'm', '1', '{"box": {"x": 0, "y": 0, "width": 9, "height": 9}, "standardised": {"storage_key": "derived/e/std-1.png"}}', 1),
       (:img, 'segment', 'm', '1', '{"embedding": {"storage_key": "derived/e/seg-1.txt", "bytes": 9}}', 1);
-- and a worker once took one of its AI jobs (an attempt row references the job)
INSERT INTO core.ai_attempt (job_id, attempt, worker, finished_at, outcome)
SELECT id, 1, 'w', now(), 'error' FROM core.ai_job WHERE image_id = :img;

SELECT tests.act_as(:outsider, 'admin');
SELECT throws_ok(format('SELECT api.erase_image(%s)', :img), 'P0002', NULL,
                 'another organization''s admin cannot erase the image');
SELECT tests.act_as(:admin, 'admin');
SELECT api.erase_image(:img) AS erased \gset
SELECT ok((:'erased'::jsonb ->> 'objects_queued')::int >= 2, 'the original and the thumbnail are queued for deletion');
SELECT tests.as_superuser();
SELECT is((SELECT array_agg(storage_key ORDER BY storage_key) FROM core.storage_purge
            WHERE image_id = :img AND storage_key LIKE 'derived/%'),
          '{derived/e/seg-1.txt,derived/e/std-1.png}'::text[], 'and the AI''s crop and segment embedding too');
SELECT is((SELECT count(*)::int FROM core.ai_job WHERE image_id = :img), 0,
          'its AI jobs are gone, attempts and all');
SELECT is((SELECT status::text || coalesce(metadata::text, '') || coalesce(source_class, '') FROM core.image
            WHERE id = :img), 'removed{}', 'the image row keeps no metadata');
SELECT ok((SELECT erased_at IS NOT NULL AND storage_key = 'erased/' || id FROM core.image WHERE id = :img),
          'nor its storage key or hash');
SELECT is((SELECT status::text FROM core.work_item WHERE id = :item), 'done', 'the done item stays: metrics hold');
SELECT ok((SELECT NOT content::text LIKE '%PLANTED%' AND content ? 'erased' FROM core.annotation_revision
            WHERE item_id = :item), 'its revision is a tombstone (the class stays)');
SELECT is((SELECT string_agg(comment, '') FROM core.review WHERE item_id = :item), '', 'review comments are gone');
SELECT is((SELECT count(*)::int FROM audit.event WHERE entity = 'image' AND entity_id = :img
                                                   AND after::text LIKE '%' || (SELECT sha256 FROM core.image
                                                                                WHERE id = :img) || '%'), 0,
          'the audit trail keeps no value of it');
SELECT throws_ok('UPDATE core.annotation_revision SET content = ''{}''', '25006', NULL,
                 'outside an erasure, revisions stay append-only');

-- a person: pseudonymised, their work kept under their id
SELECT tests.act_as(:admin, 'admin');
SELECT api.erase_person(:a1);
SELECT tests.as_superuser();
SELECT is((SELECT email::text || ' ' || display_name FROM auth."user" WHERE id = :a1),
          'erased-' || :a1 || '@erased.invalid Erased person ' || :a1, 'the account is a pseudonym');
SELECT is((SELECT author_id FROM core.annotation_revision WHERE item_id = :item), :a1::bigint,
          'their annotation stays theirs');
SELECT is((SELECT count(*)::int FROM core.project_member WHERE user_id = :a1), 0, 'and they belong nowhere');

-- retention: the project keeps finished images 1 day; an image finished 2 days ago is erased by the scheduler
SELECT tests.act_as(:admin, 'admin');
SELECT api.set_retention(:project, 1);
SELECT tests.as_superuser();
SELECT w.image_id AS img2 FROM core.work_item w WHERE w.project_id = :project AND w.status = 'new'
 ORDER BY w.id LIMIT 1 \gset
SELECT core.begin_action('cancel_item');
UPDATE core.work_item SET status = 'cancelled' WHERE image_id = :img2;
SET LOCAL session_replication_role = replica;  -- backdate past the trigger that stamps updated_at
UPDATE core.work_item SET updated_at = now() - interval '2 days' WHERE image_id = :img2;
SET LOCAL session_replication_role = origin;
SELECT is(ops.apply_retention(), 1, 'the scheduler erases the image past its retention');
SELECT ok(EXISTS (SELECT 1 FROM audit.event WHERE action = 'retention_erase' AND entity_id = :img2), 'audited');

SELECT * FROM finish();
ROLLBACK;
