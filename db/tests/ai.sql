-- The AI pipeline in SQL: jobs created with work items, claimed under a lease without double takes, retried with
-- exponential backoff, stage chaining (crop, then segment and classify, then recommend), the crop's lesion mask and
-- the segment stage's embedding, taxonomy mapping, red-flag triage, rerun, and who may see and do what.
BEGIN;
SELECT plan(64);

SELECT * FROM tests.fixture(n_images => 3, per_image => 2) \gset
SELECT id AS img2 FROM core.image WHERE project_id = :project ORDER BY id OFFSET 1 LIMIT 1 \gset
SELECT id AS img3 FROM core.image WHERE project_id = :project ORDER BY id OFFSET 2 LIMIT 1 \gset
SELECT id AS neo FROM core.taxonomy_node WHERE project_id = :project AND code = 'NEO' \gset

-- Jobs come with work items: one crop job per image, not per item.
SELECT is((SELECT count(*)::int FROM core.work_item WHERE project_id = :project), 6, 'two items per image');
SELECT results_eq(format($$SELECT image_id, stage::text, status::text FROM core.ai_job
                           WHERE image_id IN (%s, %s, %s) ORDER BY image_id$$, :img1, :img2, :img3),
                  format($$VALUES (%s::bigint, 'crop', 'queued'), (%s, 'crop', 'queued'), (%s, 'crop', 'queued')$$,
                         :img1, :img2, :img3),
                  'a new image gets one queued crop job, whatever its number of items');
SELECT tests.act_as(:admin, 'admin');
SELECT api.create_work_rule(:project, 'second pass', 100);
SELECT tests.as_superuser();
SELECT is((SELECT count(*)::int FROM core.ai_job WHERE image_id = :img1), 1,
          'more items for an image that already has a job queue nothing');

-- Claiming: SKIP LOCKED under a lease; only the role dl_ai_worker may.
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok($$SELECT ai.claim_jobs('w1', '{crop}', 10, 60)$$, '42501', NULL, 'an annotator cannot take AI jobs');
SELECT tests.act_as(NULL, 'ai_worker');
SELECT throws_ok($$SELECT ai.claim_jobs('w1', '{crop}', 0, 60)$$, '22023', 'max_jobs: must be between 1 and 1000',
                 'a worker asks for at least one job');
SELECT is(jsonb_array_length(ai.claim_jobs('w1', '{classify}', 10, 60)), 0, 'no classify job before its crop settles');
CREATE TEMP TABLE taken AS SELECT j FROM jsonb_array_elements(ai.claim_jobs('w1', '{crop}', 2, 60)) j;
SELECT is((SELECT count(*)::int FROM taken), 2, 'w1 takes two crop jobs');
SELECT is((SELECT j ->> 'image_id' FROM taken ORDER BY (j ->> 'job_id')::bigint LIMIT 1), :'img1',
          'oldest job first');
SELECT ok((SELECT j ? 'storage_key' AND j ? 'sha256' AND NOT j ? 'metadata' FROM taken LIMIT 1),
          'a job says where the bytes are and carries no image metadata');
SELECT is(jsonb_array_length(ai.claim_jobs('w2', '{crop}', 10, 60)), 1, 'w2 gets only the job w1 did not take');
SELECT is(jsonb_array_length(ai.claim_jobs('w3', '{crop}', 10, 60)), 0, 'nothing is taken twice');
SELECT (j ->> 'job_id')::bigint AS job1 FROM taken WHERE (j ->> 'image_id')::bigint = :img1 \gset
SELECT (j ->> 'job_id')::bigint AS job2 FROM taken WHERE (j ->> 'image_id')::bigint = :img2 \gset
SELECT tests.as_superuser();
SELECT id AS job3 FROM core.ai_job WHERE image_id = :img3 \gset
SELECT tests.act_as(NULL, 'ai_worker');

-- Crop results: checked, stored, and the next stage queued.
SELECT throws_ok(format($$SELECT ai.complete_job(%s, 'w1', 'm', '1', '{"box": {"x": 900, "y": 0, "width": 200, "height": 10}}', 5)$$, :job1),
                 '22023', 'payload.box: must lie inside the 1000x800 image', 'a box outside the image is refused');
SELECT throws_ok(format($$SELECT ai.complete_job(%s, 'w2', 'm', '1', '{"box": {"x": 1, "y": 1, "width": 2, "height": 2}}', 5)$$, :job1),
                 'PT409', NULL, 'a worker cannot complete a job it does not hold');
SELECT tests.as_superuser();
SELECT is((SELECT count(*)::int FROM core.ai_suggestion WHERE image_id = :img1), 0, 'refused results store nothing');
SELECT tests.act_as(NULL, 'ai_worker');
SELECT throws_ok(format($$SELECT ai.complete_job(%s, 'w1', 'm', '1', '{"box": {"x": 1, "y": 1, "width": 2, "height": 2}, "mask": {"size": [1000, 800], "counts": "PX]h0"}}', 5)$$, :job1),
                 '22023', 'payload.mask.size: must be [800, 1000], the image''s height and width',
                 'the crop''s lesion mask must have the image''s size');
SELECT throws_ok(format($$SELECT ai.complete_job(%s, 'w1', 'm', '1', '{"box": {"x": 1, "y": 1, "width": 2, "height": 2}, "mask": {"size": [800, 1000], "counts": "PX]h0"}}', 5)$$, :job1),
                 '22023', 'payload.mask: the mask has no pixel set', 'an empty lesion mask is no suggestion');
SELECT lives_ok(format($$SELECT ai.complete_job(%s, 'w1', 'ref-crop', '1.0', '{"box": {"x": 100, "y": 50, "width": 600, "height": 500}, "standardised": {"storage_key": "derived/1/abc.png", "width": 512, "height": 512, "media_type": "image/png"}, "mask": {"size": [800, 1000], "counts": "T[l4T3le000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000lhRa0"}}', 42)$$, :job1),
                'the holder completes a crop job, with its lesion mask');
SELECT tests.as_superuser();
SELECT results_eq(format($$SELECT status::text, attempts::int FROM core.ai_job WHERE id = %s$$, :job1),
                  $$VALUES ('done', 1)$$, 'the job is done after one attempt');
SELECT tests.act_as(NULL, 'ai_worker');
SELECT tests.as_superuser();
SELECT results_eq(format($$SELECT stage::text, status::text FROM core.ai_job WHERE image_id = %s AND stage <> 'crop'
                           ORDER BY stage$$, :img1),
                  $$VALUES ('classify', 'queued'), ('segment', 'queued')$$,
                  'a settled crop queues segment and classify side by side');
SELECT tests.act_as(NULL, 'ai_worker');
SELECT ok((SELECT (j -> 'standardised' ->> 'storage_key') = 'derived/1/abc.png'
             FROM jsonb_array_elements(ai.claim_jobs('w1', '{classify}', 10, 60)) j),
          'the classify job carries the standardised image of its crop');
SELECT tests.as_superuser();
SELECT id AS cjob1 FROM core.ai_job WHERE image_id = :img1 AND stage = 'classify' \gset
SELECT tests.act_as(NULL, 'ai_worker');

-- Failures: error text per attempt, exponential backoff, failed for good after max_attempts.
SELECT is(ai.fail_job(:job2, 'w1', 'HTTP 503 from crop endpoint') ->> 'retry_in_seconds', '2',
          'first failure: retry in 2 s');
SELECT tests.as_superuser();
SELECT results_eq(format($$SELECT status::text, last_error, run_after > now() + interval '1.9 s'
                             FROM core.ai_job WHERE id = %s$$, :job2),
                  $$VALUES ('queued', 'HTTP 503 from crop endpoint', true)$$,
                  'the job waits in the queue with its error');
SELECT tests.act_as(NULL, 'ai_worker');
SELECT is(jsonb_array_length(ai.claim_jobs('w1', '{crop}', 10, 60, 3)), 0, 'not before its backoff has passed');
SELECT tests.as_superuser();
UPDATE core.ai_job SET run_after = now() WHERE id = :job2;
SELECT tests.act_as(NULL, 'ai_worker');
SELECT is(jsonb_array_length(ai.claim_jobs('w1', '{crop}', 10, 60, 3)), 1, 'retried once the backoff passed');
SELECT is(ai.fail_job(:job2, 'w1', 'timeout') ->> 'retry_in_seconds', '4', 'second failure: retry in 4 s');
SELECT tests.as_superuser();
UPDATE core.ai_job SET run_after = now() WHERE id = :job2;
SELECT tests.act_as(NULL, 'ai_worker');
SELECT ai.claim_jobs('w1', '{crop}', 10, 60, 3);
SELECT is(ai.fail_job(:job2, 'w1', 'connection refused') ->> 'status', 'failed', 'third failure of three: failed');
SELECT tests.as_superuser();
SELECT results_eq(format($$SELECT attempt::int, outcome, error FROM core.ai_attempt WHERE job_id = %s ORDER BY 1$$, :job2),
                  $$VALUES (1, 'error', 'HTTP 503 from crop endpoint'), (2, 'error', 'timeout'),
                           (3, 'error', 'connection refused')$$,
                  'every attempt keeps its error text');
SELECT tests.act_as(NULL, 'ai_worker');
SELECT tests.as_superuser();
SELECT results_eq(format($$SELECT stage::text, status::text FROM core.ai_job WHERE image_id = %s AND stage <> 'crop'
                           ORDER BY stage$$, :img2),
                  $$VALUES ('classify', 'queued'), ('segment', 'queued')$$,
                  'a failed crop blocks neither segment nor classify, which use the original image');

-- Segment: the image prepared for click-to-segment, its embedding a stored derived file.
SELECT tests.act_as(NULL, 'ai_worker');
SELECT (j ->> 'job_id')::bigint AS sjob1 FROM jsonb_array_elements(ai.claim_jobs('w1', '{segment}', 10, 60)) j
 WHERE (j ->> 'image_id')::bigint = :img1 \gset
SELECT throws_ok(format($$SELECT ai.complete_job(%s, 'w1', 'm', '1', '{"embedding": {"storage_key": "images/1/x.png", "bytes": 10}}', 5)$$, :sjob1),
                 '22023', 'payload.embedding: must be {storage_key, bytes} of a stored derived file',
                 'an embedding must be a derived file');
SELECT throws_ok(format($$SELECT ai.complete_job(%s, 'w1', 'm', '1', '{"embedding": "AAAA"}', 5)$$, :sjob1),
                 '22023', 'payload.embedding: must be {storage_key, bytes} of a stored derived file',
                 'the embedding itself is stored as a file, not in the row');
SELECT lives_ok(format($$SELECT ai.complete_job(%s, 'w1', 'reference-grabcut', '1.0', '{"embedding": {"storage_key": "derived/1/abc/seg-1.txt", "bytes": 48000}}', 7)$$, :sjob1),
                'a segment result is recorded');
SELECT tests.as_superuser();
SELECT is((SELECT count(*)::int FROM core.ai_job WHERE image_id = :img1 AND stage = 'segment' AND status = 'queued'), 0,
          'segment queues nothing after it');
SELECT tests.act_as(NULL, 'ai_worker');

-- Leases: a dead worker's job goes back to the queue; the dead worker cannot complete it any more.
SELECT tests.as_superuser();
UPDATE core.ai_job SET lease_expires_at = now() - interval '1 s' WHERE id = :job3;
SELECT tests.act_as(NULL, 'ai_worker');
SELECT is((SELECT count(*)::int FROM jsonb_array_elements(ai.claim_jobs('w4', '{crop}', 10, 60)) j
            WHERE (j ->> 'job_id')::bigint = :job3), 1, 'a job whose lease lapsed is taken by another worker');
SELECT throws_ok(format($$SELECT ai.fail_job(%s, 'w2', 'late')$$, :job3), 'PT409', NULL,
                 'the worker that lost the lease cannot record anything');
SELECT tests.as_superuser();
SELECT results_eq(format($$SELECT attempt::int, worker, outcome FROM core.ai_attempt WHERE job_id = %s ORDER BY 1$$, :job3),
                  $$VALUES (1, 'w2', 'lease_expired'), (2, 'w4', NULL)$$, 'the lapsed attempt is recorded');
SELECT tests.act_as(NULL, 'ai_worker');
SELECT is(ai.return_jobs('w4', ARRAY[:job3]::bigint[]), 1, 'shutdown returns the job');
SELECT tests.as_superuser();
SELECT results_eq(format($$SELECT status::text, attempts::int FROM core.ai_job WHERE id = %s$$, :job3),
                  $$VALUES ('queued', 1)$$, 'a returned job is queued, the attempt not counted');
SELECT tests.act_as(NULL, 'ai_worker');

-- Classify: probabilities mapped onto the taxonomy; red flags.
SELECT tests.act_as(:admin, 'admin');
SELECT throws_ok(format($$SELECT api.configure_red_flags(%s, '{MEL,XX}', 0.6, 50)$$, :project), '22023',
                 'high_risk_codes: not in the taxonomy: XX', 'unknown codes are refused');
SELECT lives_ok(format($$SELECT api.configure_red_flags(%s, '{NEO}', 0.6, 50)$$, :project),
                'an admin marks neoplasms high-risk at 0.6');
SELECT tests.act_as(NULL, 'ai_worker');
SELECT throws_ok(format($$SELECT ai.complete_job(%s, 'w1', 'm', '1', '{"probabilities": {"MEL": 1.5}}', 5)$$, :cjob1),
                 '22023', 'payload.probabilities.MEL: must be a number between 0 and 1', 'probabilities are checked');
SELECT lives_ok(format($$SELECT ai.complete_job(%s, 'w1', 'ref-abcd', '1', '{"probabilities": {"mel": 0.8, "NV": 0.15, "SEK": 0.05}}', 30)$$, :cjob1),
                'a classify result is recorded');
SELECT tests.as_superuser();
SELECT results_eq(format($$SELECT c ->> 'code', (c ->> 'node_id')::bigint, (c ->> 'high_risk')::boolean
                             FROM core.ai_suggestion s, jsonb_array_elements(s.payload -> 'classes') c
                            WHERE s.image_id = %s AND s.stage = 'classify'$$, :img1),
                  format($$VALUES ('MEL', %s::bigint, true), ('NV', %s, true)$$, :mel, :nev),
                  'codes map onto nodes case-insensitively, most probable first; high risk is inherited');
SELECT is((SELECT payload -> 'unmapped' FROM core.ai_suggestion WHERE image_id = :img1 AND stage = 'classify'),
          '{"SEK": 0.05}'::jsonb, 'codes the taxonomy does not know are kept apart');
SELECT is((SELECT array_agg(priority ORDER BY id) FROM core.work_item WHERE image_id = :img1), '{50,50}'::int[],
          '0.8 on a high-risk class raises the image''s open items to the red-flag priority');
SELECT ok((SELECT after ->> 'code' = 'MEL' AND (after -> 'raised_items') = (SELECT jsonb_agg(id ORDER BY id)
                                                   FROM core.work_item WHERE image_id = :img1)
             FROM audit.event WHERE action = 'ai_red_flag' AND entity = 'image' AND entity_id = :img1),
          'the rule and the raised items are in the audit log');
SELECT is((SELECT count(*)::int FROM audit.event e JOIN core.work_item w ON w.id = e.entity_id
            WHERE e.action = 'ai_red_flag' AND e.entity = 'work_item' AND w.image_id = :img1
              AND (e.before ->> 'priority')::int = 0 AND (e.after ->> 'priority')::int = 50), 2,
          'each raise is audited on its item');
SELECT is((SELECT status::text FROM core.ai_job WHERE image_id = :img1 AND stage = 'recommend'), 'queued',
          'classify queues recommend');

-- img2: below the threshold nothing moves.
SELECT tests.act_as(NULL, 'ai_worker');
SELECT ai.claim_jobs('w1', '{classify}', 10, 60);
SELECT tests.as_superuser();
SELECT id AS cjob2 FROM core.ai_job WHERE image_id = :img2 AND stage = 'classify' \gset
SELECT tests.act_as(NULL, 'ai_worker');
SELECT ai.complete_job(:cjob2, 'w1', 'ref-abcd', '1', '{"probabilities": {"MEL": 0.55, "NV": 0.45}}', 30);
SELECT tests.as_superuser();
SELECT is((SELECT max(priority) FROM core.work_item WHERE image_id = :img2), 0, 'below the threshold: no raise');

-- Recommend from the taxonomy (SQL): next steps of the predicted classes.
SELECT tests.act_as(NULL, 'ai_worker');
SELECT ai.claim_jobs('w1', '{recommend}', 10, 60);
SELECT tests.as_superuser();
SELECT id AS rjob1 FROM core.ai_job WHERE image_id = :img1 AND stage = 'recommend' \gset
SELECT tests.act_as(NULL, 'ai_worker');
SELECT is(ai.recommend_from_taxonomy(:rjob1, 'w1') ->> 'status', 'done', 'recommend from the taxonomy');
SELECT tests.as_superuser();
SELECT is((SELECT payload -> 'steps' FROM core.ai_suggestion WHERE image_id = :img1 AND stage = 'recommend'),
          '["Melanoma (80 %): Urgent excision"]'::jsonb,
          'the next steps of each probable class that has some (the nevus has none)');

-- What the workspace shows: the latest suggestion per stage, without storage keys.
SELECT tests.act_as(:a1, 'annotator');
SELECT (api.next_item(:project) -> 'item') AS item \gset
SELECT is((:'item'::jsonb ->> 'priority')::int, 50, 'the red-flagged image comes first');
SELECT is(:'item'::jsonb -> 'ai' -> 'classify' -> 'payload' -> 'classes' -> 0 ->> 'code', 'MEL',
          'next_item carries the classification');
SELECT is(:'item'::jsonb -> 'ai' -> 'crop' -> 'payload' -> 'standardised',
          format('{"url": "/images/%s/standardised", "width": 512, "height": 512, "media_type": "image/png"}',
                 :img1)::jsonb, 'the standardised image by URL, never by storage key');
SELECT is(:'item'::jsonb -> 'ai' -> 'recommend' ->> 'model', 'taxonomy-next-steps', 'and the next steps');
SELECT is(:'item'::jsonb -> 'ai' -> 'crop' -> 'payload' -> 'mask' ->> 'counts', 'T[l4T3le000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000lhRa0',
          'and the lesion mask, a suggested mask region');
SELECT is(:'item'::jsonb -> 'ai' -> 'segment' -> 'payload', '{"prepared": true}'::jsonb,
          'that the image is prepared for click-to-segment, never where its embedding is');
SELECT is((api.image_file(:img1) ->> 'standardised_key'), 'derived/1/abc.png', 'the app finds the standardised bytes');

-- Who sees and does what.
SELECT tests.act_as(:outsider, 'admin');
SELECT is((SELECT count(*)::int FROM core.ai_suggestion), 0, 'someone outside the project sees no suggestion');
SELECT throws_ok(format('SELECT api.rerun_ai(%s)', :img1), 'P0002', NULL,
                 'an image of another project answers like one that does not exist');
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok(format('SELECT api.rerun_ai(%s)', :img1), '42501', NULL, 'annotators cannot rerun the AI');
SELECT tests.act_as(:admin, 'admin');
SELECT is(api.rerun_ai(:img1) ->> 'stage', 'crop', 'an admin reruns the pipeline');
SELECT tests.act_as(NULL, 'ai_worker');
SELECT ai.complete_job((j ->> 'job_id')::bigint, 'w9', 'ref-crop', '1.1', '{"box": {"x": 0, "y": 0, "width": 10, "height": 10}}', 1)
  FROM jsonb_array_elements(ai.claim_jobs('w9', '{crop}', 10, 60)) j WHERE (j ->> 'image_id')::bigint = :img1;
SELECT tests.as_superuser();
SELECT results_eq(format($$SELECT stage::text, cascade FROM core.ai_job WHERE image_id = %s AND status = 'queued'
                           ORDER BY stage$$, :img1),
                  $$VALUES ('classify', true), ('segment', true)$$,
                  'a rerun queues segment and classify again although both have results');
SELECT throws_ok(format('UPDATE core.ai_suggestion SET latency_ms = 0 WHERE image_id = %s', :img1), NULL, NULL,
                 'suggestions are append-only');
SELECT tests.act_as(:admin, 'admin');
SELECT is(api.ai_status(:project) -> 'jobs' -> 'crop' ->> 'failed', '1', 'the admin sees the failed crop job');

SELECT * FROM finish();
ROLLBACK;
