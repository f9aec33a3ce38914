-- Importing labels made elsewhere (the export's JSON Lines format) as suggestions, so a team can migrate: each
-- label shows in the workspace like a model's classification, to be confirmed or corrected, never as truth.

CREATE OR REPLACE FUNCTION core.import_class_code(rec jsonb) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = '' AS $$
    -- the export writes class as an object with its code; a plain "class": "MEL" or "class_code" is taken too
    SELECT coalesce(CASE jsonb_typeof(rec -> 'class') WHEN 'object' THEN rec -> 'class' ->> 'code'
                                                      WHEN 'string' THEN rec ->> 'class' END,
                    rec ->> 'class_code')
$$;

CREATE OR REPLACE FUNCTION api.import_labels(project_id bigint, records jsonb, source text DEFAULT 'import')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- One batch of records; the image of each is found by sha256 within the project (ids differ between
-- installations), its class by code in the project's taxonomy (case-insensitive, as for models).
DECLARE
    me bigint := core.require_role('admin');
    rec jsonb;
    pos bigint;
    img bigint;
    code text;
    mapped jsonb;
    n integer := 0;
    no_image jsonb := '[]';
    unmapped jsonb := '{}';
BEGIN
    PERFORM core.require_project_role('admin', project_id);
    IF records IS NULL OR jsonb_typeof(records) <> 'array' THEN
        PERFORM core.invalid('records', 'must be a JSON array of records');
    END IF;
    IF jsonb_array_length(records) > 10000 THEN
        PERFORM core.invalid('records', 'at most 10000 records per call: send batches');
    END IF;
    IF source IS NULL OR length(btrim(source)) NOT BETWEEN 1 AND 100 THEN
        PERFORM core.invalid('source', 'must be 1 to 100 characters');
    END IF;
    -- every record is checked before any is stored: a bad batch is refused whole
    FOR rec, pos IN SELECT e, o - 1 FROM jsonb_array_elements(records) WITH ORDINALITY AS t (e, o) LOOP
        IF jsonb_typeof(rec) <> 'object' OR jsonb_typeof(rec -> 'sha256') IS DISTINCT FROM 'string' THEN
            PERFORM core.invalid('records[' || pos || '].sha256', 'is required');
        END IF;
        IF core.import_class_code(rec) IS NULL THEN
            PERFORM core.invalid('records[' || pos || '].class', 'needs class.code (or class_code)');
        END IF;
    END LOOP;
    FOR rec IN SELECT * FROM jsonb_array_elements(records) LOOP
        code := core.import_class_code(rec);
        SELECT i.id INTO img FROM core.image i
         WHERE i.project_id = import_labels.project_id AND i.sha256 = lower(rec ->> 'sha256')
           AND i.status <> 'removed';
        IF img IS NULL THEN
            no_image := no_image || to_jsonb(rec ->> 'sha256');
            CONTINUE;
        END IF;
        mapped := core.ai_map_classes(import_labels.project_id, jsonb_build_object(code, 1));
        IF mapped -> 'unmapped' <> '{}' THEN
            unmapped := jsonb_set(unmapped, ARRAY[code], to_jsonb(coalesce((unmapped ->> code)::int, 0) + 1));
        END IF;
        INSERT INTO core.ai_suggestion (image_id, stage, job_id, model_name, model_version, payload, latency_ms)
        VALUES (img, 'classify', NULL, 'import:' || btrim(source), 'labels',
                mapped || jsonb_build_object('imported', jsonb_strip_nulls(jsonb_build_object(
                    'descriptors', rec -> 'descriptors', 'description', rec -> 'description',
                    'regions', rec -> 'regions', 'annotator_id', rec -> 'annotator_id',
                    'item_id', rec -> 'item_id'))), 0);
        n := n + 1;
    END LOOP;
    PERFORM core.audit('import_labels', 'project', project_id, NULL,
                       jsonb_build_object('source', source, 'imported', n, 'unmatched', jsonb_array_length(no_image),
                                          'unmapped', unmapped));
    RETURN jsonb_build_object('imported', n, 'unmatched_images', no_image, 'unmapped_classes', unmapped);
END
$$;
COMMENT ON FUNCTION api.import_labels(bigint, jsonb, text) IS
    'Admin: imports up to 10000 label records (the export''s JSON Lines records) as classification suggestions '
    'named import:<source>: the image by sha256 within the project, the class by code. Returns how many were '
    'imported, the sha256 of records whose image is not in the project, and class codes the taxonomy lacks.';

GRANT EXECUTE ON FUNCTION api.import_labels(bigint, jsonb, text) TO dl_admin;
