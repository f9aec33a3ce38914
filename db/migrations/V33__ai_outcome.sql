-- The AI as a rater, per model version (docs/agreement.md): for each approved item, the classification the annotator
-- was shown (the image's latest classify suggestion made before their first submit: a model's, or imported labels
-- `import:<source>`), whether they took it (their first answer was its top class: the Accept button or the same
-- class typed), and how far the final annotation ended from it (class changed, taxonomy distance, IoU of the final
-- lesion mask with the crop stage's suggested mask). Written when an item becomes done, like core.final_label.
CREATE TABLE core.ai_outcome (
    item_id        bigint PRIMARY KEY REFERENCES core.work_item (id),
    project_id     bigint NOT NULL,
    image_id       bigint NOT NULL,
    annotator_id   bigint NOT NULL,
    suggestion_id  bigint NOT NULL,
    source         text NOT NULL CHECK (source IN ('model', 'import')),
    model_name     text NOT NULL,
    model_version  text NOT NULL,
    ai_class       bigint,
    first_class    bigint,
    final_class    bigint,
    accepted       boolean NOT NULL,
    distance       double precision,   -- Wu-Palmer distance from the AI's class to the final class
    mask_iou       double precision    -- final lesion mask against the crop stage's mask, when both exist
);
CREATE INDEX ai_outcome_model_idx ON core.ai_outcome (project_id, source, model_name, model_version);
COMMENT ON TABLE core.ai_outcome IS
    'Per approved item: the classification its annotator was shown, whether they took it and how far the final '
    'annotation moved from it. The input of metrics.ai_model_quality.';

CREATE FUNCTION core.ai_outcome_rows(p_items bigint[]) RETURNS SETOF core.ai_outcome
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
BEGIN
    RETURN QUERY
    WITH items AS (
        SELECT w.id, w.project_id, w.image_id, f.author_id, f.class_id AS first_class, f.created_at AS first_at,
               l.class_id AS final_class, l.content AS final_content
          FROM core.work_item w
          JOIN core.annotation_revision f ON f.item_id = w.id AND f.revision_seq = 1
          JOIN core.annotation_revision l ON l.item_id = w.id AND l.revision_seq = w.last_revision_seq
         WHERE w.id = ANY (p_items) AND w.status = 'done' AND NOT w.gold_check)
    SELECT i.id, i.project_id, i.image_id, i.author_id, s.id,
           CASE WHEN s.model_name LIKE 'import:%' THEN 'import' ELSE 'model' END, s.model_name, s.model_version,
           s.ai_class, i.first_class, i.final_class,
           s.ai_class IS NOT NULL AND s.ai_class = i.first_class,
           CASE WHEN s.ai_class IS NOT NULL AND i.final_class IS NOT NULL
                THEN core.taxonomy_distance(s.ai_class, i.final_class) END,
           CASE WHEN m.mask IS NOT NULL AND fm.pixels IS NOT NULL
                THEN core.multirange_size(m.mask * fm.pixels)::float8
                     / nullif(core.multirange_size(m.mask + fm.pixels), 0) END
      FROM items i
     CROSS JOIN LATERAL (SELECT x.id, x.model_name, x.model_version,
                                (x.payload -> 'classes' -> 0 ->> 'node_id')::bigint AS ai_class
                           FROM core.ai_suggestion x
                          WHERE x.image_id = i.image_id AND x.stage = 'classify' AND x.created_at <= i.first_at
                          ORDER BY x.id DESC LIMIT 1) s
      LEFT JOIN LATERAL (SELECT core.mask_ranges(x.payload -> 'mask') AS mask
                           FROM core.ai_suggestion x
                          WHERE x.image_id = i.image_id AND x.stage = 'crop' AND x.created_at <= i.first_at
                            AND jsonb_typeof(x.payload -> 'mask') = 'object'
                          ORDER BY x.id DESC LIMIT 1) m ON true
      LEFT JOIN LATERAL (SELECT range_agg(core.mask_ranges(g -> 'rle')) AS pixels
                           FROM jsonb_array_elements(CASE WHEN jsonb_typeof(i.final_content -> 'regions') = 'array'
                                                          THEN i.final_content -> 'regions' ELSE '[]' END) g
                          WHERE g ->> 'type' = 'mask' AND btrim(g ->> 'label') = 'lesion') fm ON true;
END
$$;
COMMENT ON FUNCTION core.ai_outcome_rows(bigint[]) IS 'core.ai_outcome rows of the given items (done, shown an AI class).';

CREATE FUNCTION core.keep_ai_outcome() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    DELETE FROM core.ai_outcome o WHERE o.item_id = NEW.id;
    IF NEW.status = 'done' THEN
        INSERT INTO core.ai_outcome SELECT * FROM core.ai_outcome_rows(ARRAY[NEW.id]);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER keep_ai_outcome AFTER UPDATE OF status ON core.work_item
    FOR EACH ROW WHEN ((OLD.status = 'done') <> (NEW.status = 'done'))
    EXECUTE FUNCTION core.keep_ai_outcome();

INSERT INTO core.ai_outcome
SELECT * FROM core.ai_outcome_rows(ARRAY(SELECT w.id FROM core.work_item w WHERE w.status = 'done'));

-- Per model version: acceptance (first answer = the AI's class), agreement with the final class, Cohen's kappa of
-- the AI against the final labels ((po - pe) / (1 - pe), pe from the two sides' class shares), mean taxonomy
-- distance, and the mean IoU of the suggested lesion mask with the final one. Imported labels apart (source).
CREATE MATERIALIZED VIEW metrics.ai_model_quality AS
    WITH o AS (SELECT * FROM core.ai_outcome WHERE ai_class IS NOT NULL AND final_class IS NOT NULL),
    totals AS (
        SELECT project_id, source, model_name, model_version, count(*) AS items,
               count(*) FILTER (WHERE accepted) AS accepted,
               count(*) FILTER (WHERE ai_class = final_class) AS agreed,
               avg(distance) AS mean_taxonomy_distance,
               count(mask_iou) AS mask_items, avg(mask_iou) AS mean_mask_iou
          FROM o GROUP BY project_id, source, model_name, model_version),
    ai_share AS (SELECT project_id, source, model_name, model_version, ai_class AS class, count(*) AS k
                   FROM o GROUP BY 1, 2, 3, 4, 5),
    final_share AS (SELECT project_id, source, model_name, model_version, final_class AS class, count(*) AS k
                      FROM o GROUP BY 1, 2, 3, 4, 5),
    chance AS (SELECT a.project_id, a.source, a.model_name, a.model_version, sum(a.k * f.k)::float8 AS kk
                 FROM ai_share a JOIN final_share f USING (project_id, source, model_name, model_version, class)
                GROUP BY 1, 2, 3, 4)
    SELECT t.project_id, t.source, t.model_name, t.model_version, t.items, t.accepted,
           t.accepted::float8 / t.items AS acceptance_rate,
           t.agreed::float8 / t.items AS agreement_rate,
           CASE WHEN coalesce(c.kk, 0) / (t.items::float8 * t.items) >= 1 THEN NULL
                ELSE (t.agreed::float8 / t.items - coalesce(c.kk, 0) / (t.items::float8 * t.items))
                     / (1 - coalesce(c.kk, 0) / (t.items::float8 * t.items)) END AS cohen_kappa,
           t.mean_taxonomy_distance, t.mask_items, t.mean_mask_iou
      FROM totals t LEFT JOIN chance c USING (project_id, source, model_name, model_version);
CREATE UNIQUE INDEX ON metrics.ai_model_quality (project_id, source, model_name, model_version);
COMMENT ON MATERIALIZED VIEW metrics.ai_model_quality IS
    'Per project and model version (imported labels as source import): approved items whose annotator was shown its '
    'classification, how often they took it, how often it was the final class, Cohen''s kappa against the final '
    'labels, mean taxonomy distance to them, and the mean IoU of its suggested lesion mask with the final one.';
