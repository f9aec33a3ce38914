-- Segmentation (docs/segmentation.md): each project names the labels its regions may carry. Every project starts
-- with the dermoscopic structures; labels its annotations already use are kept, so nothing written before stops
-- validating.
ALTER TABLE core.project ADD COLUMN region_labels text[] NOT NULL
    DEFAULT ARRAY['lesion', 'pigment network', 'dots/globules', 'streaks', 'blue-white veil',
                  'regression structures', 'vessels', 'milia-like cysts']
    CONSTRAINT project_region_labels_count CHECK (cardinality(region_labels) BETWEEN 1 AND 100)
    CONSTRAINT project_region_labels_present CHECK (array_position(region_labels, NULL) IS NULL);
COMMENT ON COLUMN core.project.region_labels IS
    'The labels a region may carry (api.set_region_labels); a mask must carry one, other regions may.';

UPDATE core.project p
   SET region_labels = (ARRAY(SELECT l FROM unnest(p.region_labels || used.labels) WITH ORDINALITY AS t(l, n)
                               GROUP BY l ORDER BY min(n)))[1:100]
  FROM (SELECT w.project_id, array_agg(DISTINCT btrim(g ->> 'label') ORDER BY btrim(g ->> 'label')) AS labels
          FROM (SELECT r.item_id, r.content FROM core.annotation_revision r
                UNION ALL SELECT d.item_id, d.content FROM core.annotation_draft d) c
          JOIN core.work_item w ON w.id = c.item_id
          CROSS JOIN LATERAL jsonb_array_elements(CASE jsonb_typeof(c.content -> 'regions')
                                                       WHEN 'array' THEN c.content -> 'regions' ELSE '[]' END) g
         WHERE jsonb_typeof(g -> 'label') = 'string' AND btrim(g ->> 'label') <> ''
         GROUP BY w.project_id) used
 WHERE used.project_id = p.id;

-- the region check takes the project's labels now (R__validation creates the new signature)
DROP FUNCTION IF EXISTS core.validate_regions(jsonb, integer, integer);
