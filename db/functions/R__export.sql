-- Export of approved annotations for ML: the final revision of each done item, filtered, as one JSON record per
-- item. The app streams pages of records inside one REPEATABLE READ transaction (a consistent snapshot, short
-- queries, flat memory) and writes JSON Lines, CSV or COCO; api.export_manifest counts, versions and audits first.

CREATE OR REPLACE FUNCTION core.export_filters(p_project bigint, f jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
-- Checks the filters and returns them normalised: {class_ids, rule_ids, image_ids, batch, from, to, gold}.
DECLARE
    k text;
    codes text[];
    unknown text[];
    class_ids bigint[];
BEGIN
    f := coalesce(f, '{}');
    IF jsonb_typeof(f) <> 'object' THEN
        PERFORM core.invalid('filters', 'must be an object');
    END IF;
    FOR k IN SELECT jsonb_object_keys(f) LOOP
        IF k NOT IN ('classes', 'rule_ids', 'image_ids', 'batch', 'from', 'to', 'gold') THEN
            PERFORM core.invalid('filters.' || k, 'unknown filter (classes, rule_ids, image_ids, batch, from, to, gold)');
        END IF;
    END LOOP;
    IF f ? 'classes' THEN
        IF jsonb_typeof(f -> 'classes') <> 'array' THEN
            PERFORM core.invalid('filters.classes', 'must be a list of taxonomy codes');
        END IF;
        codes := ARRAY(SELECT jsonb_array_elements_text(f -> 'classes'));
        SELECT array_agg(c) INTO unknown FROM unnest(codes) c
         WHERE NOT EXISTS (SELECT 1 FROM core.taxonomy_node n WHERE n.project_id = p_project AND n.code = c);
        IF unknown IS NOT NULL THEN
            PERFORM core.invalid('filters.classes', 'not in the taxonomy: ' || array_to_string(unknown, ', '));
        END IF;
        class_ids := ARRAY(SELECT n.id FROM core.taxonomy_node n WHERE n.project_id = p_project AND n.code = ANY (codes));
    END IF;
    IF f ? 'rule_ids' AND (jsonb_typeof(f -> 'rule_ids') <> 'array'
                           OR EXISTS (SELECT 1 FROM jsonb_array_elements(f -> 'rule_ids') x
                                       WHERE jsonb_typeof(x) <> 'number')) THEN
        PERFORM core.invalid('filters.rule_ids', 'must be a list of rule ids');
    END IF;
    IF f ? 'image_ids' AND (CASE WHEN jsonb_typeof(f -> 'image_ids') <> 'array' THEN true
                                 ELSE jsonb_array_length(f -> 'image_ids') NOT BETWEEN 1 AND 10000
                                      OR EXISTS (SELECT 1 FROM jsonb_array_elements(f -> 'image_ids') x
                                                  WHERE CASE WHEN jsonb_typeof(x) <> 'number' THEN true
                                                             ELSE x::numeric <> trunc(x::numeric) OR x::numeric < 1
                                                                  OR x::numeric > 9223372036854775807 END) END) THEN
        PERFORM core.invalid('filters.image_ids', 'must be a list of 1 to 10000 image ids');
    END IF;
    IF f ? 'gold' AND (f ->> 'gold') NOT IN ('exclude', 'include', 'only') THEN
        PERFORM core.invalid('filters.gold', 'must be exclude, include or only');
    END IF;
    -- an ISO date or timestamp, each bound on its own: what the manifest records must mean the same later
    -- ('yesterday', 'infinity' and the like would not)
    FOREACH k IN ARRAY ARRAY['from', 'to'] LOOP
        IF f ? k THEN
            IF jsonb_typeof(f -> k) <> 'string'
               OR (f ->> k) !~ '^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$' THEN
                PERFORM core.invalid('filters.' || k, 'must be an ISO date or timestamp (2026-01-31, 2026-01-31T08:00Z)');
            END IF;
            BEGIN
                PERFORM (f ->> k)::timestamptz;
            EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
                PERFORM core.invalid('filters.' || k, 'is not a real date or time');
            END;
        END IF;
    END LOOP;
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'classes', f -> 'classes', 'class_ids', to_jsonb(class_ids), 'rule_ids', f -> 'rule_ids',
        'image_ids', f -> 'image_ids',
        'batch', f ->> 'batch', 'from', f ->> 'from', 'to', f ->> 'to',
        'gold', coalesce(f ->> 'gold', 'exclude')));
END
$$;

CREATE OR REPLACE FUNCTION core.export_matches(w core.work_item, i core.image, r core.annotation_revision,
                                               f jsonb) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
-- One item against the normalised filters. Classes match their descendants too. Gold: 'exclude' leaves out the
-- gold checks (the gold image's own reviewed item is exported once, like any item); 'only' keeps the gold
-- standards' reference items; 'include' keeps both.
BEGIN
    RETURN i.status <> 'removed'  -- removed and erased images leave the dataset
       AND (NOT f ? 'class_ids' OR EXISTS (
                SELECT 1 FROM core.taxonomy_node n, jsonb_array_elements(f -> 'class_ids') c
                 WHERE n.id = r.class_id AND n.path @> jsonb_build_array(jsonb_build_object('id', c::bigint))))
       AND (NOT f ? 'rule_ids' OR (f -> 'rule_ids') @> to_jsonb(w.rule_id))
       AND (NOT f ? 'image_ids' OR (f -> 'image_ids') @> to_jsonb(w.image_id))
       AND (NOT f ? 'batch' OR i.upload_batch = f ->> 'batch')
       AND (NOT f ? 'from' OR w.updated_at >= (f ->> 'from')::timestamptz)
       AND (NOT f ? 'to' OR w.updated_at < (f ->> 'to')::timestamptz)
       AND CASE f ->> 'gold'
             WHEN 'exclude' THEN NOT w.gold_check
             WHEN 'only' THEN NOT w.gold_check AND r.id IN (SELECT g.revision_id FROM core.gold_standard g
                                                            WHERE g.image_id = w.image_id AND g.active)
             ELSE true END;
END
$$;

CREATE OR REPLACE FUNCTION core.export_record(w core.work_item, i core.image, r core.annotation_revision)
RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
DECLARE
    n core.taxonomy_node;
    ai core.ai_suggestion := core.ai_latest(i.id, 'classify');
BEGIN
    SELECT * INTO n FROM core.taxonomy_node x WHERE x.id = r.class_id;
    RETURN jsonb_build_object(
        'item_id', w.id, 'image_id', i.id, 'sha256', i.sha256, 'storage_key', i.storage_key,
        'width', i.width, 'height', i.height, 'media_type', i.media_type, 'source_class', i.source_class,
        'upload_batch', i.upload_batch, 'rule_id', w.rule_id, 'gold_check', w.gold_check,
        -- DICOM uploads: the de-identified file, and the patient pseudonym (split datasets by patient, not image)
        'dicom', CASE WHEN i.metadata ? 'dicom' THEN jsonb_build_object(
                     'storage_key', 'dicom/' || i.project_id || '/' || i.sha256 || '.dcm',
                     'patient', i.metadata -> 'dicom' ->> 'patient_pseudonym',
                     'modality', i.metadata -> 'dicom' ->> 'modality',
                     'frames', i.metadata -> 'dicom' -> 'frames') END,
        'class', jsonb_build_object('id', n.id, 'code', n.code, 'name', n.name, 'icd10', n.icd10,
                                    'snomed_ct', n.snomed_ct,
                                    'path', (SELECT jsonb_agg(p ->> 'code') FROM jsonb_array_elements(n.path) p)),
        'descriptors', coalesce(r.content -> 'descriptors', '{}'),
        'description', r.content -> 'description', 'confidence', r.content -> 'confidence',
        'regions', coalesce(r.content -> 'regions', '[]'),
        'annotator_id', w.annotator_id,
        'reviewer_ids', (SELECT coalesce(jsonb_agg(DISTINCT v.reviewer_id), '[]') FROM core.review v
                          WHERE v.item_id = w.id),
        'revision_count', w.last_revision_seq, 'approved_at', w.updated_at,
        'ai', CASE WHEN ai.id IS NOT NULL THEN jsonb_build_object(
                  'model', ai.model_name, 'version', ai.model_version,
                  'top_code', ai.payload -> 'classes' -> 0 ->> 'code',
                  'top_probability', ai.payload -> 'classes' -> 0 -> 'probability',
                  'agreed', (ai.payload -> 'classes' -> 0 ->> 'node_id')::bigint = r.class_id) END);
END
$$;

CREATE OR REPLACE FUNCTION core.taxonomy_version(p_project bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = '' AS $$
    -- changes whenever a node's code, name, parent, codes or active flag changes
    SELECT 'tx-' || left(md5(coalesce(string_agg(concat_ws('|', n.id, n.code, n.name, n.parent_id, n.icd10,
                                                            n.snomed_ct, n.active), ';' ORDER BY n.id), '')), 16)
      FROM core.taxonomy_node n WHERE n.project_id = p_project
$$;

CREATE OR REPLACE FUNCTION core.export_caller(p_project bigint) RETURNS core.actor
LANGUAGE plpgsql SET search_path = '' AS $$
-- Exports are for the project's admins, and for partner keys with export:read for the project.
DECLARE
    a core.actor;
BEGIN
    IF auth.key_id() IS NOT NULL THEN
        a.organization_id := (core.require_scope('export:read', p_project)).organization_id;
        RETURN a;
    END IF;
    RETURN core.caller('admin', p_project);
END
$$;
COMMENT ON FUNCTION core.export_caller(bigint) IS
    'The caller of an export: the project''s admin (core.caller), or a partner key with export:read for it.';

CREATE OR REPLACE FUNCTION api.export_manifest(project_id bigint, filters jsonb DEFAULT '{}', format text DEFAULT 'jsonl')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    u core.actor := core.export_caller(project_id);
    f jsonb := core.export_filters(project_id, filters);
    m jsonb;
BEGIN
    IF format IS NULL OR format NOT IN ('jsonl', 'csv', 'coco', 'isic', 'dicom_seg') THEN
        PERFORM core.invalid('format', 'must be jsonl, csv, coco, isic or dicom_seg');
    END IF;
    SELECT jsonb_build_object(
               'project_id', p.id, 'project', p.name, 'format', format, 'filters', f - 'class_ids',
               'items', count(x.class_id), 'images', count(DISTINCT x.image_id),
               'classes', coalesce(jsonb_object_agg(x.code, x.n) FILTER (WHERE x.code IS NOT NULL), '{}'),
               'taxonomy_version', core.taxonomy_version(p.id), 'exported_at', now(), 'exported_by', coalesce((SELECT x.email FROM auth."user" x WHERE x.id = u.id),
                                                         (SELECT 'API key ' || k.prefix FROM auth.api_key k WHERE k.id = auth.key_id())),
               'generator', 'DermLabel')
      INTO m
      FROM core.project p
      LEFT JOIN LATERAL (
          SELECT r.class_id, w.image_id, n.code, count(*) OVER (PARTITION BY n.code) AS n
            FROM core.work_item w
            JOIN core.image i ON i.id = w.image_id
            JOIN core.annotation_revision r ON r.item_id = w.id AND r.revision_seq = w.last_revision_seq
            JOIN core.taxonomy_node n ON n.id = r.class_id
           WHERE w.project_id = p.id AND w.status = 'done' AND core.export_matches(w, i, r, f)) x ON true
     WHERE p.id = export_manifest.project_id
     GROUP BY p.id, p.name;
    PERFORM core.audit('export', 'project', project_id, NULL, m);
    RETURN m;
END
$$;
COMMENT ON FUNCTION api.export_manifest(bigint, jsonb, text) IS
    'Admin: starts an export (audited) in a format (jsonl, csv, coco, isic: lesion mask PNGs, dicom_seg: DICOM '
    'Segmentations): counts of the approved items that match the filters {classes: [codes, descendants included], '
    'rule_ids, image_ids, batch, from, to (approval time), gold: exclude|include|only}, per class, and the taxonomy '
    'version. The records come from export_page.';

CREATE OR REPLACE FUNCTION api.export_page(project_id bigint, filters jsonb DEFAULT '{}', after_image bigint DEFAULT 0,
                                           after_item bigint DEFAULT 0, max_rows integer DEFAULT 1000)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- Keyset pagination by (image, item): the items of one image are adjacent (COCO lists each image once).
DECLARE
    f jsonb;
BEGIN
    PERFORM core.export_caller(project_id);
    f := core.export_filters(project_id, filters);
    IF max_rows IS NULL OR max_rows NOT BETWEEN 1 AND 10000 THEN
        PERFORM core.invalid('max_rows', 'must be between 1 and 10000');
    END IF;
    -- the limit on the rows, inside; the aggregate outside (a LIMIT beside an aggregate limits its one row)
    RETURN (SELECT coalesce(jsonb_agg(core.export_record(x.w, x.i, x.r) ORDER BY (x.w).image_id, (x.w).id), '[]')
              FROM (SELECT w, i, r FROM core.work_item w
                      JOIN core.image i ON i.id = w.image_id
                      JOIN core.annotation_revision r ON r.item_id = w.id AND r.revision_seq = w.last_revision_seq
                     WHERE w.project_id = export_page.project_id AND w.status = 'done'
                       AND (w.image_id, w.id) > (export_page.after_image, export_page.after_item)
                       AND core.export_matches(w, i, r, f)
                     ORDER BY w.image_id, w.id
                     LIMIT export_page.max_rows) x);
END
$$;
COMMENT ON FUNCTION api.export_page(bigint, jsonb, bigint, bigint, integer) IS
    'Admin: up to max_rows export records after (after_image, after_item), ordered by image then item: id, '
    'image (sha256, storage key, size), class with ICD-10/SNOMED CT and path, descriptors, description, regions, '
    'annotator, reviewers, revision count, the AI suggestion and whether it agreed; for DICOM uploads the '
    'de-identified file and the patient pseudonym.';

CREATE OR REPLACE FUNCTION api.export_categories(project_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    PERFORM core.export_caller(project_id);
    RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object('id', n.id, 'name', n.code, 'long_name', n.name,
                                                         'supercategory', coalesce(p.code, ''), 'icd10', n.icd10,
                                                         'snomed_ct', n.snomed_ct) ORDER BY n.id), '[]')
              FROM core.taxonomy_node n LEFT JOIN core.taxonomy_node p ON p.id = n.parent_id
             WHERE n.project_id = export_categories.project_id);
END
$$;
COMMENT ON FUNCTION api.export_categories(bigint) IS
    'Admin: the taxonomy as COCO categories (id, code as name, parent code as supercategory, codes).';

GRANT EXECUTE ON FUNCTION api.export_manifest(bigint, jsonb, text), api.export_page(bigint, jsonb, bigint, bigint, integer),
                          api.export_categories(bigint)
    TO dl_admin, dl_partner;
