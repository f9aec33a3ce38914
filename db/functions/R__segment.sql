-- Click-to-segment (docs/segmentation.md): what the app's POST /items/{item_id}/segment needs to forward a prompt to
-- the segment service. Whether the caller may open the item and whether the prompt is sound are decided here; the
-- app only moves the bytes and checks the service's answer.

CREATE OR REPLACE FUNCTION core.check_segment_prompt(p_prompt jsonb, p_width integer, p_height integer)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = '' AS $$
-- {"points": [[x, y, 1|0], …], "box": [x, y, w, h] | null} in pixels of a p_width × p_height image: 1 to 50 points
-- inside the image (at least one on the lesion) unless a box is given; the box inside the image, with a size.
-- Returns {points, box} with numbers only (labels as 0/1), box null when absent.
DECLARE
    k text;
    pts jsonb := p_prompt -> 'points';
    box jsonb := p_prompt -> 'box';
    pt jsonb;
    field text;
    i integer := 0;
    positive boolean := false;
    out_pts jsonb := '[]';
BEGIN
    IF p_prompt IS NULL OR jsonb_typeof(p_prompt) <> 'object' THEN
        PERFORM core.invalid('prompt', 'must be an object {"points": [[x, y, 1|0], …], "box": [x, y, w, h] | null}');
    END IF;
    FOR k IN SELECT jsonb_object_keys(p_prompt) LOOP
        IF k NOT IN ('points', 'box') THEN
            PERFORM core.invalid(k, 'is not part of a prompt (points, box)');
        END IF;
    END LOOP;
    IF pts IS NULL OR jsonb_typeof(pts) = 'null' THEN
        pts := '[]';
    END IF;
    IF jsonb_typeof(pts) <> 'array' THEN
        PERFORM core.invalid('points', 'must be a list of [x, y, 1|0] (1 = lesion, 0 = not lesion)');
    END IF;
    IF jsonb_array_length(pts) > 50 THEN
        PERFORM core.invalid('points', 'at most 50 points');
    END IF;
    FOR pt IN SELECT jsonb_array_elements(pts) LOOP
        field := format('points[%s]', i);
        i := i + 1;
        -- one test at a time: each reads only what the one before has shown to be there
        IF jsonb_typeof(pt) <> 'array' THEN
            PERFORM core.invalid(field, 'must be [x, y, 1|0] (1 = lesion, 0 = not lesion)');
        ELSIF jsonb_array_length(pt) <> 3 OR jsonb_typeof(pt -> 0) <> 'number' OR jsonb_typeof(pt -> 1) <> 'number'
              OR jsonb_typeof(pt -> 2) <> 'number' THEN
            PERFORM core.invalid(field, 'must be [x, y, 1|0] (1 = lesion, 0 = not lesion)');
        ELSIF (pt ->> 2)::numeric NOT IN (0, 1) THEN
            PERFORM core.invalid(field, 'the third value is 1 (lesion) or 0 (not lesion)');
        END IF;
        IF (pt ->> 0)::numeric NOT BETWEEN 0 AND p_width OR (pt ->> 1)::numeric NOT BETWEEN 0 AND p_height THEN
            PERFORM core.invalid(field, format('must lie inside the %sx%s image', p_width, p_height));
        END IF;
        positive := positive OR (pt ->> 2)::numeric = 1;
        out_pts := out_pts || jsonb_build_array(jsonb_build_array(pt -> 0, pt -> 1, (pt ->> 2)::numeric::integer));
    END LOOP;
    IF box IS NULL OR jsonb_typeof(box) = 'null' THEN
        box := 'null';
        IF NOT positive THEN
            PERFORM core.invalid('points', 'click the lesion at least once (a point [x, y, 1]), or give a box');
        END IF;
    ELSIF jsonb_typeof(box) <> 'array' THEN
        PERFORM core.invalid('box', 'must be [x, y, w, h] in pixels of the image, or null');
    ELSIF jsonb_array_length(box) <> 4
          OR EXISTS (SELECT 1 FROM jsonb_array_elements(box) v WHERE jsonb_typeof(v) <> 'number') THEN
        PERFORM core.invalid('box', 'must be [x, y, w, h] in pixels of the image, or null');
    ELSIF (box ->> 0)::numeric < 0 OR (box ->> 1)::numeric < 0 OR (box ->> 2)::numeric <= 0
          OR (box ->> 3)::numeric <= 0 OR (box ->> 0)::numeric + (box ->> 2)::numeric > p_width
          OR (box ->> 1)::numeric + (box ->> 3)::numeric > p_height THEN
        PERFORM core.invalid('box', format('must have a size and lie inside the %sx%s image', p_width, p_height));
    END IF;
    RETURN jsonb_build_object('points', out_pts, 'box', box);
END
$$;
COMMENT ON FUNCTION core.check_segment_prompt(jsonb, integer, integer) IS
    'A click-to-segment prompt {points: [[x, y, 1|0], …], box} checked against the image''s size (22023 naming the '
    'field); returned with numbers only.';

CREATE OR REPLACE FUNCTION api.segment_source(item_id bigint, prompt jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    doc jsonb;
BEGIN
    PERFORM core.require_signed_in();
    -- under the caller's row-level security, as item_detail reads: an item they may not open is not found
    SELECT jsonb_build_object('item_id', w.id, 'image_id', i.id, 'storage_key', i.storage_key,
                              'media_type', i.media_type, 'width', i.width, 'height', i.height,
                              -- the image prepared ahead by the pipeline's segment stage, if it was
                              'embedding_key', (core.ai_latest(i.id, 'segment')).payload -> 'embedding'
                                               ->> 'storage_key')
      INTO doc
      FROM core.work_item w JOIN core.image i ON i.id = w.image_id
     WHERE w.id = segment_source.item_id AND i.status <> 'removed';
    IF doc IS NULL THEN
        PERFORM core.item_not_found(item_id);
    END IF;
    -- the prompt is checked only once the item is known to be the caller's to open
    RETURN doc || core.check_segment_prompt(prompt, (doc ->> 'width')::integer, (doc ->> 'height')::integer);
END
$$;
COMMENT ON FUNCTION api.segment_source(bigint, jsonb) IS
    'For the app''s POST /items/{item_id}/segment (click-to-segment): where the bytes of the item''s image are, its '
    'size and its prepared embedding (embedding_key, null when the pipeline has not prepared it), with the prompt '
    '{points: [[x, y, 1|0], …] (1 = lesion, 0 = not lesion; 1 to 50, one on the lesion unless a box is given), '
    'box: [x, y, w, h] | null} checked against the image (400 naming the field). An item you may not open answers '
    'exactly like one that does not exist (404).';

GRANT EXECUTE ON FUNCTION core.check_segment_prompt(jsonb, integer, integer) TO dl_annotator, dl_reviewer, dl_admin;
GRANT EXECUTE ON FUNCTION api.segment_source(bigint, jsonb) TO dl_annotator, dl_reviewer, dl_admin;
