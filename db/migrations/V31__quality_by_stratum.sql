-- Quality by stratum (docs/agreement.md): agreement on the class, gold accuracy and AI agreement broken down by the
-- values of descriptors such as the Fitzpatrick skin type and the body site, so a team sees whether its labels (and
-- its model) are worse on some skin or some site. Which descriptors stratify is per project (api.set_quality_strata).
ALTER TABLE core.project ADD COLUMN quality_strata text[] NOT NULL DEFAULT '{fitzpatrick,body_site}'
    CONSTRAINT project_quality_strata_count CHECK (cardinality(quality_strata) <= 5);
COMMENT ON COLUMN core.project.quality_strata IS
    'Descriptor keys (single-choice or yes/no) that metrics.quality_by_stratum breaks quality down by.';

-- An image's value of a stratifying descriptor is the most common among its final labels (ties: the first in text
-- order): the readers of an image usually agree on its skin type and site; when they do not, one value decides.
-- Class agreement is nominal Krippendorff's alpha over the stratum's images read at least twice, from final_label's
-- n and c in one pass (as metrics.agreement_alpha). Gold accuracy: gold checks of the stratum's gold images, first
-- answer against the reference class (as metrics.gold_accuracy). AI agreement: approved items of the stratum's
-- images whose final class is the AI's top class (as metrics.ai_agreement). Full precision.
CREATE MATERIALIZED VIEW metrics.quality_by_stratum AS
    WITH strata AS (
        SELECT p.id AS project_id, s.key FROM core.project p CROSS JOIN unnest(p.quality_strata) s(key)),
    image_value AS (
        SELECT DISTINCT ON (f.project_id, st.key, f.image_id) f.project_id, st.key AS stratum, f.image_id,
               f.label AS value
          FROM core.final_label f JOIN strata st ON st.project_id = f.project_id AND f.dimension = 'descriptor:' || st.key
         GROUP BY f.project_id, st.key, f.image_id, f.label
         ORDER BY f.project_id, st.key, f.image_id, count(*) DESC, f.label),
    cls AS (
        SELECT iv.project_id, iv.stratum, iv.value, f.image_id, f.label, f.n, f.c
          FROM image_value iv JOIN core.final_label f ON f.image_id = iv.image_id AND f.dimension = 'class'),
    agreement AS (
        SELECT c.project_id, c.stratum, c.value,
               count(DISTINCT c.image_id) AS images,
               count(DISTINCT c.image_id) FILTER (WHERE c.n >= 2) AS images_read_twice,
               count(*) FILTER (WHERE c.n >= 2) AS ratings,
               sum((c.n - c.c)::float8 / (c.n - 1)) FILTER (WHERE c.n >= 2) AS disagreement
          FROM cls c GROUP BY c.project_id, c.stratum, c.value),
    marginals AS (
        SELECT m.project_id, m.stratum, m.value, sum(m.k * m.k) AS kk
          FROM (SELECT project_id, stratum, value, label, count(*)::float8 AS k FROM cls WHERE n >= 2
                 GROUP BY project_id, stratum, value, label) m
         GROUP BY m.project_id, m.stratum, m.value),
    gold AS (
        SELECT iv.project_id, iv.stratum, iv.value, count(*) AS gold_checks,
               count(*) FILTER (WHERE r.class_id = g.class_id) AS gold_correct
          FROM core.work_item w
          JOIN core.annotation_revision r ON r.item_id = w.id AND r.revision_seq = 1
          JOIN core.gold_standard g ON g.image_id = w.image_id
          JOIN image_value iv ON iv.image_id = w.image_id
         WHERE w.gold_check
         GROUP BY iv.project_id, iv.stratum, iv.value),
    ai_top AS (
        SELECT DISTINCT ON (s.image_id) s.image_id, (s.payload -> 'classes' -> 0 ->> 'node_id') AS ai_class
          FROM core.ai_suggestion s
         WHERE s.stage = 'classify' AND s.image_id IN (SELECT image_id FROM image_value)
         ORDER BY s.image_id, s.id DESC),
    ai AS (
        SELECT c.project_id, c.stratum, c.value, count(*) AS ai_items,
               count(*) FILTER (WHERE a.ai_class = c.label) AS ai_agreed
          FROM cls c JOIN ai_top a ON a.image_id = c.image_id
         GROUP BY c.project_id, c.stratum, c.value)
    SELECT a.project_id, a.stratum, a.value, a.images, a.images_read_twice, a.ratings,
           CASE WHEN a.ratings < 2 OR a.ratings::float8 ^ 2 - m.kk <= 0 THEN NULL
                ELSE 1 - (a.ratings - 1) * a.disagreement / (a.ratings::float8 ^ 2 - m.kk) END AS class_alpha,
           coalesce(g.gold_checks, 0) AS gold_checks,
           g.gold_correct::float8 / nullif(g.gold_checks, 0) AS gold_accuracy,
           coalesce(ai.ai_items, 0) AS ai_items,
           ai.ai_agreed::float8 / nullif(ai.ai_items, 0) AS ai_agreement_rate
      FROM agreement a
      LEFT JOIN marginals m USING (project_id, stratum, value)
      LEFT JOIN gold g USING (project_id, stratum, value)
      LEFT JOIN ai USING (project_id, stratum, value);
CREATE UNIQUE INDEX ON metrics.quality_by_stratum (project_id, stratum, value);
COMMENT ON MATERIALIZED VIEW metrics.quality_by_stratum IS
    'Per project, stratifying descriptor (core.project.quality_strata, default fitzpatrick and body_site) and value: '
    'approved images, class agreement (nominal Krippendorff''s alpha over images read at least twice), gold checks '
    'and accuracy, and how often the AI''s top class was the final class. Full precision.';
