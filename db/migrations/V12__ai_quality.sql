-- Quality control that uses the AI: agreement of final classes with the AI's top class (a metrics view), a review
-- hint when an annotator contradicts a confident AI, and active learning (new items of a rule ordered by how unsure
-- the AI was about them).

ALTER TABLE core.project
    ADD COLUMN ai_disagreement_min numeric NOT NULL DEFAULT 0.8
        CHECK (ai_disagreement_min > 0 AND ai_disagreement_min <= 1);
COMMENT ON COLUMN core.project.ai_disagreement_min IS
    'A submitted class that contradicts an AI top class at least this probable raises an ai_disagreement hint.';

ALTER TABLE core.work_rule
    ADD COLUMN active_learning text CHECK (active_learning IN ('least_confidence', 'entropy'));
COMMENT ON COLUMN core.work_rule.active_learning IS
    'NULL: new items by priority and age. least_confidence (1 - top probability) or entropy (normalised): new items '
    'of equal priority that the AI was least sure about come first.';

-- Set from the latest classification, only on new items of active-learning rules (the sort key of next_item).
ALTER TABLE core.work_item ADD COLUMN ai_uncertainty real CHECK (ai_uncertainty BETWEEN 0 AND 1);

-- The claim index gains the uncertainty between priority and age, in next_item's order.
DROP INDEX core.work_item_claim_new_idx;
CREATE INDEX work_item_claim_new_idx ON core.work_item (project_id, priority DESC, ai_uncertainty DESC NULLS LAST,
                                                        created_at, id)
    WHERE status = 'new';

CREATE MATERIALIZED VIEW metrics.ai_agreement AS
    WITH final AS (
        SELECT w.project_id, w.image_id, r.class_id
          FROM core.work_item w
          JOIN core.annotation_revision r ON r.item_id = w.id AND r.revision_seq = w.last_revision_seq
         WHERE w.status = 'done' AND NOT w.gold_check),
    ai AS (
        SELECT DISTINCT ON (s.image_id) s.image_id, (s.payload -> 'classes' -> 0 ->> 'node_id')::bigint AS ai_class,
               (s.payload -> 'classes' -> 0 ->> 'probability')::numeric AS ai_probability
          FROM core.ai_suggestion s WHERE s.stage = 'classify'
         ORDER BY s.image_id, s.id DESC)
    SELECT f.project_id, f.class_id, n.code, n.name, count(*) AS items,
           count(*) FILTER (WHERE ai.ai_class = f.class_id) AS ai_agreed,
           round(count(*) FILTER (WHERE ai.ai_class = f.class_id)::numeric / count(*), 4) AS agreement_rate,
           round(avg(ai.ai_probability), 4) AS mean_ai_probability
      FROM final f
      JOIN ai ON ai.image_id = f.image_id
      JOIN core.taxonomy_node n ON n.id = f.class_id
     GROUP BY f.project_id, f.class_id, n.code, n.name;
CREATE UNIQUE INDEX ON metrics.ai_agreement (project_id, class_id);
COMMENT ON MATERIALIZED VIEW metrics.ai_agreement IS
    'Per final class of approved items that the AI classified: how often the AI''s top class was that class, and '
    'its mean top probability.';
GRANT SELECT ON metrics.ai_agreement TO dl_analyst, dl_admin;
