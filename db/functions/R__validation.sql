-- Validation of annotation content against the project's taxonomy and descriptor schema.
-- Every violation raises 22023 with a message that starts with the field and the field in the COLUMN slot.

CREATE OR REPLACE FUNCTION core.check_number(p_field text, p_value jsonb, p_min numeric, p_max numeric)
RETURNS numeric
LANGUAGE plpgsql SET search_path = '' AS $$
DECLARE
    n numeric;
BEGIN
    IF jsonb_typeof(p_value) IS DISTINCT FROM 'number' THEN
        PERFORM core.invalid(p_field, 'must be a number');
    END IF;
    n := p_value::numeric;
    IF (p_min IS NOT NULL AND n < p_min) OR (p_max IS NOT NULL AND n > p_max) THEN
        PERFORM core.invalid(p_field, format('must be between %s and %s', coalesce(p_min::text, '-inf'),
                                                                       coalesce(p_max::text, 'inf')));
    END IF;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION core.validate_descriptors(p_project bigint, p_descriptors jsonb, p_complete boolean)
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
DECLARE
    f core.descriptor_field;
    k text;
    v jsonb;
    field text;
    item jsonb;
BEGIN
    IF jsonb_typeof(p_descriptors) <> 'object' THEN
        PERFORM core.invalid('descriptors', 'must be an object');
    END IF;
    FOR k IN SELECT jsonb_object_keys(p_descriptors) LOOP
        IF NOT EXISTS (SELECT 1 FROM core.descriptor_field d WHERE d.project_id = p_project AND d.key = k) THEN
            PERFORM core.invalid('descriptors.' || k, 'is not a descriptor of this project');
        END IF;
    END LOOP;
    FOR f IN SELECT * FROM core.descriptor_field d WHERE d.project_id = p_project ORDER BY d.sort_order, d.key LOOP
        field := 'descriptors.' || f.key;
        v := p_descriptors -> f.key;
        IF v IS NULL OR v = 'null'::jsonb THEN
            IF f.required AND p_complete THEN
                PERFORM core.invalid(field, 'is required');
            END IF;
            CONTINUE;
        END IF;
        CASE f.kind
        WHEN 'single' THEN
            IF jsonb_typeof(v) <> 'string' OR NOT (v #>> '{}') = ANY (f.options) THEN
                PERFORM core.invalid(field, 'must be one of ' || array_to_string(f.options, ', '));
            END IF;
        WHEN 'multi' THEN
            IF jsonb_typeof(v) <> 'array' THEN
                PERFORM core.invalid(field, 'must be a list of ' || array_to_string(f.options, ', '));
            END IF;
            IF f.required AND p_complete AND jsonb_array_length(v) = 0 THEN
                PERFORM core.invalid(field, 'is required');
            END IF;
            FOR item IN SELECT jsonb_array_elements(v) LOOP
                IF jsonb_typeof(item) <> 'string' OR NOT (item #>> '{}') = ANY (f.options) THEN
                    PERFORM core.invalid(field, 'must be a list of ' || array_to_string(f.options, ', '));
                END IF;
            END LOOP;
            IF (SELECT count(DISTINCT e) <> count(*) FROM jsonb_array_elements(v) e) THEN
                PERFORM core.invalid(field, 'lists a value twice');
            END IF;
        WHEN 'number' THEN
            PERFORM core.check_number(field, v, f.min_value, f.max_value);
        WHEN 'text' THEN
            IF jsonb_typeof(v) <> 'string' OR length(v #>> '{}') > 2000 THEN
                PERFORM core.invalid(field, 'must be text of at most 2000 characters');
            END IF;
        WHEN 'boolean' THEN
            IF jsonb_typeof(v) <> 'boolean' THEN
                PERFORM core.invalid(field, 'must be true or false');
            END IF;
        END CASE;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION core.check_point(p_field text, p_point jsonb, p_width integer, p_height integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = '' AS $$
BEGIN
    IF jsonb_typeof(p_point) IS DISTINCT FROM 'array' OR jsonb_array_length(p_point) <> 2 THEN
        PERFORM core.invalid(p_field, 'each point is [x, y]');
    END IF;
    PERFORM core.check_number(p_field, p_point -> 0, 0, p_width);
    PERFORM core.check_number(p_field, p_point -> 1, 0, p_height);
END
$$;

CREATE OR REPLACE FUNCTION core.validate_regions(p_regions jsonb, p_width integer, p_height integer,
                                                 p_labels text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = '' AS $$
-- The region shapes of docs/segmentation.md, in pixels of the image; labels from the project's list.
DECLARE
    r jsonb;
    i integer := 0;
    field text;
    pt jsonb;
    label text;
    x numeric; y numeric; w numeric; h numeric;
BEGIN
    IF jsonb_typeof(p_regions) <> 'array' THEN
        PERFORM core.invalid('regions', 'must be a list');
    END IF;
    IF jsonb_array_length(p_regions) > 200 THEN
        PERFORM core.invalid('regions', 'at most 200 regions');
    END IF;
    FOR r IN SELECT jsonb_array_elements(p_regions) LOOP
        field := format('regions[%s]', i);
        i := i + 1;
        IF jsonb_typeof(r) <> 'object' THEN
            PERFORM core.invalid(field, 'must be an object');
        END IF;
        IF r ? 'label' AND jsonb_typeof(r -> 'label') NOT IN ('string', 'null') THEN
            PERFORM core.invalid(field || '.label', 'must be text');
        END IF;
        label := nullif(btrim(r ->> 'label'), '');
        IF label IS NULL AND r ->> 'type' = 'mask' THEN
            PERFORM core.invalid(field || '.label', 'is required for a mask (one of the project''s region labels)');
        END IF;
        IF label IS NOT NULL AND p_labels IS NOT NULL AND NOT label = ANY (p_labels) THEN
            PERFORM core.invalid(field || '.label', 'must be one of the project''s region labels: '
                                                    || array_to_string(p_labels, ', '));
        END IF;
        CASE r ->> 'type'
        WHEN 'bbox' THEN
            x := core.check_number(field || '.x', r -> 'x', 0, p_width);
            y := core.check_number(field || '.y', r -> 'y', 0, p_height);
            w := core.check_number(field || '.w', r -> 'w', 0, p_width);
            h := core.check_number(field || '.h', r -> 'h', 0, p_height);
            IF w = 0 OR h = 0 OR x + w > p_width OR y + h > p_height THEN
                PERFORM core.invalid(field, format('box must have a size and lie inside the %sx%s image',
                                                   p_width, p_height));
            END IF;
        WHEN 'point' THEN
            PERFORM core.check_number(field || '.x', r -> 'x', 0, p_width);
            PERFORM core.check_number(field || '.y', r -> 'y', 0, p_height);
        WHEN 'polygon' THEN
            IF jsonb_typeof(r -> 'points') IS DISTINCT FROM 'array' OR jsonb_array_length(r -> 'points') < 3 THEN
                PERFORM core.invalid(field || '.points', 'a polygon needs at least 3 points');
            END IF;
            IF jsonb_array_length(r -> 'points') > 1000 THEN
                PERFORM core.invalid(field || '.points', 'at most 1000 points');
            END IF;
            FOR pt IN SELECT jsonb_array_elements(r -> 'points') LOOP
                PERFORM core.check_point(field || '.points', pt, p_width, p_height);
            END LOOP;
            IF r ? 'drawn' AND coalesce(r ->> 'drawn', '') NOT IN ('freehand', 'spline') THEN
                PERFORM core.invalid(field || '.drawn', 'must be freehand or spline');
            END IF;
        WHEN 'line' THEN
            IF jsonb_typeof(r -> 'points') IS DISTINCT FROM 'array' OR jsonb_array_length(r -> 'points') <> 2 THEN
                PERFORM core.invalid(field || '.points', 'a line is two points [[x1, y1], [x2, y2]]');
            END IF;
            PERFORM core.check_point(field || '.points', r -> 'points' -> 0, p_width, p_height);
            PERFORM core.check_point(field || '.points', r -> 'points' -> 1, p_width, p_height);
            IF r -> 'points' -> 0 = r -> 'points' -> 1 THEN
                PERFORM core.invalid(field || '.points', 'a line needs two different points');
            END IF;
        WHEN 'mask' THEN
            PERFORM core.check_rle(r -> 'rle', p_height, p_width, field || '.rle');
        ELSE
            PERFORM core.invalid(field || '.type', 'must be bbox, polygon, point, line or mask');
        END CASE;
        -- nothing but the shape's own fields: a stored region carries no figure a client made up (a length_mm)
        SELECT k INTO label FROM jsonb_object_keys(r) k
         WHERE NOT k = ANY (CASE r ->> 'type' WHEN 'bbox' THEN ARRAY['type', 'label', 'x', 'y', 'w', 'h']
                                              WHEN 'point' THEN ARRAY['type', 'label', 'x', 'y']
                                              WHEN 'polygon' THEN ARRAY['type', 'label', 'points', 'drawn']
                                              WHEN 'line' THEN ARRAY['type', 'label', 'points']
                                              ELSE ARRAY['type', 'label', 'rle'] END)
         ORDER BY k LIMIT 1;
        IF FOUND THEN
            PERFORM core.invalid(field || '.' || label, format('is not a field of a %s region', r ->> 'type'));
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION core.validate_regions(jsonb, integer, integer, text[]) IS
    'Raises 22023 naming the field unless every region is a bbox, polygon, point, line or mask (COCO RLE) inside '
    'the width x height image with only its own fields, labelled (masks must be) with one of the given labels '
    '(any label when p_labels is NULL: content stored earlier, measured again).';

CREATE OR REPLACE FUNCTION core.validate_content(p_item core.work_item, p_content jsonb, p_complete boolean)
RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
-- p_complete: a submit (class and required descriptors needed); false: a draft (checked for shape only).
-- Returns the class node id.
DECLARE
    k text;
    img core.image;
    cls bigint;
BEGIN
    IF p_content IS NULL OR jsonb_typeof(p_content) <> 'object' THEN
        PERFORM core.invalid('content', 'must be a JSON object');
    END IF;
    IF length(p_content::text) > 1000000 THEN
        PERFORM core.invalid('content', 'is larger than 1 MB');
    END IF;
    FOR k IN SELECT jsonb_object_keys(p_content) LOOP
        IF k NOT IN ('class', 'descriptors', 'description', 'regions', 'confidence', 'notes') THEN
            PERFORM core.invalid(k, 'is not a field of an annotation '
                                    '(class, descriptors, description, regions, confidence, notes)');
        END IF;
    END LOOP;

    IF p_content -> 'class' IS NULL OR p_content -> 'class' = 'null'::jsonb THEN
        IF p_complete THEN
            PERFORM core.invalid('class', 'is required');
        END IF;
    ELSE
        IF jsonb_typeof(p_content -> 'class') <> 'number' OR (p_content ->> 'class') !~ '^\d{1,18}$' THEN
            PERFORM core.invalid('class', 'must be the id of a taxonomy node');
        END IF;
        cls := (p_content ->> 'class')::bigint;
        IF NOT EXISTS (SELECT 1 FROM core.taxonomy_node n
                        WHERE n.id = cls AND n.project_id = p_item.project_id AND n.active) THEN
            PERFORM core.invalid('class', 'is not an active condition of this project''s taxonomy');
        END IF;
    END IF;

    PERFORM core.validate_descriptors(p_item.project_id, coalesce(p_content -> 'descriptors', '{}'), p_complete);

    IF p_content ? 'description' AND p_content -> 'description' <> 'null'::jsonb THEN
        IF jsonb_typeof(p_content -> 'description') <> 'string' THEN
            PERFORM core.invalid('description', 'must be text');
        ELSIF length(p_content ->> 'description') > 20000 THEN
            PERFORM core.invalid('description', 'at most 20000 characters');
        END IF;
    END IF;
    IF p_content ? 'regions' AND p_content -> 'regions' <> 'null'::jsonb THEN
        SELECT i.* INTO img FROM core.image i WHERE i.id = p_item.image_id;
        PERFORM core.validate_regions(p_content -> 'regions', img.width, img.height,
                                      (SELECT p.region_labels FROM core.project p WHERE p.id = p_item.project_id));
    END IF;
    IF p_content ? 'confidence' AND p_content -> 'confidence' <> 'null'::jsonb
       AND coalesce(p_content ->> 'confidence', '') NOT IN ('low', 'medium', 'high') THEN
        PERFORM core.invalid('confidence', 'must be low, medium or high');
    END IF;
    IF p_content ? 'notes' AND p_content -> 'notes' <> 'null'::jsonb
       AND (jsonb_typeof(p_content -> 'notes') <> 'string' OR length(p_content ->> 'notes') > 5000) THEN
        PERFORM core.invalid('notes', 'must be text of at most 5000 characters');
    END IF;
    RETURN cls;
END
$$;
COMMENT ON FUNCTION core.validate_content(core.work_item, jsonb, boolean) IS
    'Checks annotation content against the project''s taxonomy, descriptor schema and region rules (22023 naming '
    'the field); p_complete for a submit (class and required descriptors needed), false for a draft (shape only). '
    'Returns the class node id.';

-- api.region_measurements checks regions as its caller (row-level security applies to what it reads)
GRANT EXECUTE ON FUNCTION core.validate_regions(jsonb, integer, integer, text[]),
                          core.check_point(text, jsonb, integer, integer),
                          core.check_number(text, jsonb, numeric, numeric)
    TO dl_annotator, dl_reviewer, dl_admin;
