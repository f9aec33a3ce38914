-- What the AI's results feed (R__ai_results.sql, with R__quality.sql and V12): the active-learning order
-- (core.ai_set_uncertainty, core.ai_rekey, core.ai_uncertainty), the ai_disagreement review hint,
-- metrics.ai_agreement, and the project's thresholds.
BEGIN;
SELECT plan(17);

SELECT * FROM tests.fixture(n_images => 4) \gset
SELECT id AS img2 FROM core.image WHERE project_id = :project ORDER BY id OFFSET 1 LIMIT 1 \gset
SELECT id AS img3 FROM core.image WHERE project_id = :project ORDER BY id OFFSET 2 LIMIT 1 \gset
SELECT id AS img4 FROM core.image WHERE project_id = :project ORDER BY id OFFSET 3 LIMIT 1 \gset

-- A worker's whole run for one image, crop skipped: the classification arrives through the real functions.
CREATE FUNCTION pg_temp.classify(p_img bigint, p_probs jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    j jsonb;
BEGIN
    FOR j IN SELECT x FROM jsonb_array_elements(ai.claim_jobs('t', '{crop}', 100, 60)) x LOOP
        PERFORM ai.skip_job((j ->> 'job_id')::bigint, 't', 'no crop in this test');
    END LOOP;
    FOR j IN SELECT x FROM jsonb_array_elements(ai.claim_jobs('t', '{classify}', 100, 60)) x LOOP
        IF (j ->> 'image_id')::bigint = p_img THEN
            PERFORM ai.complete_job((j ->> 'job_id')::bigint, 't', 'm', '1',
                                    jsonb_build_object('probabilities', p_probs), 5);
        ELSE
            PERFORM ai.return_jobs('t', ARRAY[(j ->> 'job_id')::bigint]);
        END IF;
    END LOOP;
END
$$;

-- Active learning: the AI is sure about img1 (0.95), unsure about img2 (0.5/0.5), fairly sure about img3.
SELECT tests.act_as(:admin, 'admin');
SELECT throws_ok(format($$SELECT api.update_work_rule(%s, '{"active_learning": "random"}')$$, :rule), '22023',
                 'active_learning: must be least_confidence, entropy or null',
                 'api.update_work_rule: active_learning takes only the two known orders');
SELECT is(api.update_work_rule(:rule, '{"active_learning": "least_confidence"}') ->> 'active_learning',
          'least_confidence', 'api.update_work_rule: an admin turns active learning on for a rule');
SELECT tests.as_superuser();
SELECT pg_temp.classify(:img1, '{"MEL": 0.95, "NV": 0.05}');
SELECT pg_temp.classify(:img2, '{"MEL": 0.5, "NV": 0.5}');
SELECT pg_temp.classify(:img3, '{"MEL": 0.2, "NV": 0.8}');
SELECT results_eq(format('SELECT image_id, round(ai_uncertainty::numeric, 2) FROM core.work_item WHERE rule_id = %s '
                         'AND ai_uncertainty IS NOT NULL ORDER BY image_id', :rule),
                  format('VALUES (%s::bigint, 0.05), (%s, 0.50), (%s, 0.20)', :img1, :img2, :img3),
                  'core.ai_set_uncertainty: least confidence = 1 - the top probability');
SELECT tests.act_as(:a1, 'annotator');
SELECT is((api.next_item(:project) -> 'item' -> 'image' ->> 'id')::bigint, :img2::bigint,
          'api.next_item: the most uncertain image first');
SELECT tests.act_as(:a2, 'annotator');
SELECT is((api.next_item(:project) -> 'item' -> 'image' ->> 'id')::bigint, :img3::bigint,
          'api.next_item: then the next most uncertain');
SELECT tests.act_as(:a3, 'annotator');
SELECT is((api.next_item(:project) -> 'item' -> 'image' ->> 'id')::bigint, :img1::bigint,
          'api.next_item: then the confident one, before images the AI has not seen');

-- Entropy re-keys the waiting items at once.
SELECT tests.act_as(:admin, 'admin');
SELECT api.update_work_rule(:rule, '{"active_learning": "entropy"}');
SELECT tests.as_superuser();
SELECT pg_temp.classify(:img4, '{"MEL": 0.25, "NV": 0.25, "BCC": 0.25, "BKL": 0.25}');
SELECT is((SELECT round(ai_uncertainty::numeric, 3) FROM core.work_item WHERE image_id = :img4), 1.000,
          'core.ai_set_uncertainty: a uniform distribution has normalised entropy 1');
SELECT is(round(core.ai_uncertainty('entropy', '{"a": 0.5, "b": 0.5}')::numeric, 3), 1.000,
          'core.ai_uncertainty: entropy of two equal classes: 1');
SELECT is(round(core.ai_uncertainty('entropy', '{"a": 0.9, "b": 0.1}')::numeric, 3), 0.469,
          'core.ai_uncertainty: entropy of 0.9/0.1: -(0.9 ln 0.9 + 0.1 ln 0.1) / ln 2 = 0.469');

-- Disagreeing with a confident AI raises a hint for the reviewer; agreeing, or being more specific, does not.
-- a1 holds img2 (AI 0.5: not confident), a2 img3 (AI NV 0.8), a3 img1 (AI MEL 0.95).
SELECT tests.act_as(:a3, 'annotator');
SELECT api.submit_annotation(id, tests.content(:nev)) FROM core.work_item WHERE image_id = :img1;
SELECT tests.act_as(:a2, 'annotator');
SELECT api.submit_annotation(id, tests.content(:nev)) FROM core.work_item WHERE image_id = :img3;
SELECT tests.act_as(:a1, 'annotator');
SELECT api.submit_annotation(id, tests.content(:nev)) FROM core.work_item WHERE image_id = :img2;
SELECT tests.as_superuser();
SELECT results_eq(format($$SELECT w.image_id, h.message FROM core.review_hint h JOIN core.work_item w ON w.id = h.item_id
                            WHERE h.kind = 'ai_disagreement' AND w.project_id = %s$$, :project),
                  format($$VALUES (%s::bigint, 'The AI (m) was 95 %% confident in Melanoma (MEL).')$$, :img1),
                  'core.raise_review_hints: only the class that contradicts a 0.95 AI gets a hint '
                  '(0.8 for the same class, 0.5 unsure: none)');
SELECT tests.act_as(:admin, 'admin');
SELECT throws_ok(format('SELECT api.set_quality_thresholds(%s, 10, 0.25, 1.5)', :project), '22023',
                 'ai_disagreement_min: must be greater than 0 and at most 1',
                 'api.set_quality_thresholds: thresholds are checked');
SELECT is(api.set_quality_thresholds(:project, 5, 0.3, 0.5) ->> 'ai_disagreement_min', '0.5',
          'api.set_quality_thresholds: an admin lowers the AI threshold');
SELECT ok((SELECT after ->> 'ai_disagreement_min' = '0.5' FROM audit.event WHERE action = 'set_quality_thresholds'
            ORDER BY id DESC LIMIT 1), 'api.set_quality_thresholds: and it is audited');

-- metrics.ai_agreement: approve all three; final classes NV, NV, NV; the AI said MEL, NV, MEL/NV tie (MEL first).
SELECT tests.act_as(:r1, 'reviewer');
SELECT api.next_review(:project) FROM generate_series(1, 1);
SELECT api.approve(id) FROM core.work_item WHERE project_id = :project AND status = 'review' AND assignee_id = :r1;
SELECT api.next_review(:project);
SELECT api.approve(id) FROM core.work_item WHERE project_id = :project AND status = 'review' AND assignee_id = :r1;
SELECT api.next_review(:project);
SELECT api.approve(id) FROM core.work_item WHERE project_id = :project AND status = 'review' AND assignee_id = :r1;
SELECT tests.as_superuser();
SELECT is((SELECT count(*)::int FROM core.work_item WHERE project_id = :project AND status = 'done'), 3,
          'api.approve: three approved items');
REFRESH MATERIALIZED VIEW metrics.ai_agreement;
SELECT results_eq(format('SELECT code, items, ai_agreed, agreement_rate, mean_ai_probability FROM metrics.ai_agreement '
                         'WHERE project_id = %s', :project),
                  $$VALUES ('NV'::text, 3::bigint, 1::bigint, 0.3333::numeric, 0.7500::numeric)$$,
                  'metrics.ai_agreement: NV three times; the AI agreed once (img3); '
                  'mean top probability (0.95 + 0.5 + 0.8) / 3');

-- a rule switched to active learning re-keys its waiting items from what the AI already said
SELECT tests.act_as(:admin, 'admin');
SELECT (api.create_work_rule(:project, 'second look', 100) ->> 'id')::bigint AS rule2 \gset
SELECT api.generate_work_items(:rule2);
SELECT is((SELECT ai_uncertainty FROM core.work_item WHERE rule_id = :rule2 AND image_id = :img1), NULL,
          'api.generate_work_items: no key while the rule is not active learning');
SELECT api.update_work_rule(:rule2, '{"active_learning": "entropy"}');
SELECT tests.as_superuser();
SELECT is((SELECT round(ai_uncertainty::numeric, 3) FROM core.work_item WHERE rule_id = :rule2 AND image_id = :img1),
          0.286, 'api.update_work_rule: switched on, the waiting items are re-keyed: entropy of 0.95/0.05 = 0.286');

SELECT * FROM finish();
ROLLBACK;
