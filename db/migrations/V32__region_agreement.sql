-- Region agreement (docs/agreement.md): how well the reads of an image agree on where a labelled region is. The
-- masks of approved reads are kept as pixel ranges (a multirange of column-major pixel offsets, one per item and
-- label: several masks of one label in a read are their union) in core.final_mask, written when an item becomes done
-- like core.final_label; Dice and IoU of two reads are then multirange intersections, computed in C.

-- The set pixels of a COCO RLE mask as ranges of column-major offsets. Uses core.rle_counts (R__regions.sql);
-- PL/pgSQL resolves it when called, and no mask can exist before that repeatable does.
CREATE FUNCTION core.mask_ranges(p_rle jsonb) RETURNS int8multirange
LANGUAGE plpgsql IMMUTABLE SET search_path = '' AS $$
BEGIN
    RETURN (SELECT coalesce(range_agg(int8range(s.start, s.start + s.len)), '{}'::int8multirange)
              FROM (SELECT t.r AS len, t.n,
                           coalesce(sum(t.r) OVER (ORDER BY t.n ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::bigint
                               AS start
                      FROM unnest(core.rle_counts(p_rle ->> 'counts')) WITH ORDINALITY AS t(r, n)) s
             WHERE s.n % 2 = 0 AND s.len > 0);
END
$$;
COMMENT ON FUNCTION core.mask_ranges(jsonb) IS
    'The set pixels of a COCO RLE mask as a multirange of column-major pixel offsets (for unions and intersections).';

CREATE FUNCTION core.multirange_size(p_ranges int8multirange) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = '' AS $$
    SELECT coalesce(sum(upper(r) - lower(r)), 0)::bigint FROM unnest(p_ranges) r
$$;
COMMENT ON FUNCTION core.multirange_size(int8multirange) IS 'How many pixels a multirange of pixel offsets covers.';

CREATE TABLE core.final_mask (
    item_id    bigint NOT NULL REFERENCES core.work_item (id),
    label      text   NOT NULL,
    project_id bigint NOT NULL,
    image_id   bigint NOT NULL,
    rater_id   bigint NOT NULL,
    pixels     int8multirange NOT NULL,
    area       bigint NOT NULL,
    PRIMARY KEY (item_id, label)
);
CREATE INDEX final_mask_image_idx ON core.final_mask (image_id, label, rater_id);
COMMENT ON TABLE core.final_mask IS
    'The masks of approved items (gold checks excluded) per label, as pixel ranges: the input of region agreement.';

CREATE FUNCTION core.final_mask_rows(p_items bigint[]) RETURNS SETOF core.final_mask
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
BEGIN
    RETURN QUERY
    SELECT m.item_id, m.label, m.project_id, m.image_id, m.rater_id, m.pixels, core.multirange_size(m.pixels)
      FROM (SELECT w.id AS item_id, btrim(g ->> 'label') AS label, w.project_id, w.image_id, r.author_id AS rater_id,
                   range_agg(core.mask_ranges(g -> 'rle')) AS pixels
              FROM core.work_item w
              JOIN core.annotation_revision r ON r.item_id = w.id AND r.revision_seq = w.last_revision_seq
             CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(r.content -> 'regions') = 'array'
                                                          THEN r.content -> 'regions' ELSE '[]' END) g
             WHERE w.id = ANY (p_items) AND w.status = 'done' AND NOT w.gold_check AND g ->> 'type' = 'mask'
             GROUP BY w.id, btrim(g ->> 'label'), w.project_id, w.image_id, r.author_id) m;
END
$$;
COMMENT ON FUNCTION core.final_mask_rows(bigint[]) IS 'core.final_mask rows of the given items (those done).';

CREATE FUNCTION core.keep_final_masks() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    DELETE FROM core.final_mask f WHERE f.item_id = NEW.id;
    IF NEW.status = 'done' THEN
        INSERT INTO core.final_mask SELECT * FROM core.final_mask_rows(ARRAY[NEW.id]);
    END IF;
    RETURN NULL;
END
$$;
-- the same WHEN clause as keep_final_labels: only an item entering or leaving done pays for it
CREATE TRIGGER keep_final_masks AFTER UPDATE OF status ON core.work_item
    FOR EACH ROW WHEN ((OLD.status = 'done') <> (NEW.status = 'done'))
    EXECUTE FUNCTION core.keep_final_masks();

INSERT INTO core.final_mask
SELECT * FROM core.final_mask_rows(ARRAY(SELECT w.id FROM core.work_item w WHERE w.status = 'done'));

-- Per pair of readers of an image and label that both drew: Dice 2|A∩B| / (|A| + |B|), IoU |A∩B| / |A∪B|.
CREATE MATERIALIZED VIEW metrics.region_agreement_pair AS
    WITH pairs AS (
        SELECT a.project_id, a.label, a.rater_id AS annotator_a, b.rater_id AS annotator_b,
               core.multirange_size(a.pixels * b.pixels) AS inter, a.area AS area_a, b.area AS area_b
          FROM core.final_mask a
          JOIN core.final_mask b ON b.image_id = a.image_id AND b.label = a.label AND b.rater_id > a.rater_id)
    SELECT project_id, label, annotator_a, annotator_b, count(*) AS images,
           avg(2.0::float8 * inter / nullif(area_a + area_b, 0)) AS mean_dice,
           avg(inter::float8 / nullif(area_a + area_b - inter, 0)) AS mean_iou,
           min(2.0::float8 * inter / nullif(area_a + area_b, 0)) AS min_dice
      FROM pairs GROUP BY project_id, label, annotator_a, annotator_b;
CREATE UNIQUE INDEX ON metrics.region_agreement_pair (project_id, label, annotator_a, annotator_b);
COMMENT ON MATERIALIZED VIEW metrics.region_agreement_pair IS
    'Per project, region label and pair of annotators: images where both drew a mask of that label, mean and '
    'lowest Dice, mean IoU (full precision).';

CREATE MATERIALIZED VIEW metrics.region_agreement_project AS
    WITH pairs AS (
        SELECT a.project_id, a.label, a.image_id,
               core.multirange_size(a.pixels * b.pixels) AS inter, a.area AS area_a, b.area AS area_b
          FROM core.final_mask a
          JOIN core.final_mask b ON b.image_id = a.image_id AND b.label = a.label AND b.rater_id > a.rater_id),
    drawn AS (
        SELECT project_id, label, count(DISTINCT image_id) AS images_drawn, count(*) AS masks
          FROM core.final_mask GROUP BY project_id, label)
    SELECT d.project_id, d.label, d.images_drawn, d.masks, count(DISTINCT p.image_id) AS images_compared,
           count(p.image_id) AS pairs,
           avg(2.0::float8 * p.inter / nullif(p.area_a + p.area_b, 0)) AS mean_dice,
           avg(p.inter::float8 / nullif(p.area_a + p.area_b - p.inter, 0)) AS mean_iou
      FROM drawn d LEFT JOIN pairs p USING (project_id, label)
     GROUP BY d.project_id, d.label, d.images_drawn, d.masks;
CREATE UNIQUE INDEX ON metrics.region_agreement_project (project_id, label);
COMMENT ON MATERIALIZED VIEW metrics.region_agreement_project IS
    'Per project and region label: images with a mask of it, masks, images and reader pairs compared, mean Dice and '
    'IoU over the pairs (full precision).';
