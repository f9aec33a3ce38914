-- Regions beyond boxes (docs/segmentation.md): masks in COCO run-length encoding, measuring lines, what is
-- measured from them, and each project's region labels.

CREATE OR REPLACE FUNCTION core.rle_counts(p_counts text) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = '' AS $$
-- The run lengths of a COCO compressed RLE string, decoded as pycocotools' rleFrString does; NULL when the text
-- is not such a string. Each run is 5-bit groups (least significant first) in chr(48 + c): 0x20 = more follows,
-- 0x10 in the last group = negative; from the fourth run on, the value is the difference to the run two before.
DECLARE
    b bytea := convert_to(p_counts, 'UTF8');
    n integer := length(b);
    p integer := 0;
    runs bigint[] := '{}';
    m integer := 0;
    x bigint;
    k integer;
    c integer;
    more boolean;
BEGIN
    WHILE p < n LOOP
        x := 0;
        k := 0;
        more := true;
        WHILE more LOOP
            IF p >= n OR k > 7 THEN  -- cut short, or longer than any run of a 120-megapixel image
                RETURN NULL;
            END IF;
            c := get_byte(b, p) - 48;
            IF c < 0 OR c > 63 THEN
                RETURN NULL;
            END IF;
            x := x | ((c & 31)::bigint << (5 * k));
            more := (c & 32) <> 0;
            p := p + 1;
            k := k + 1;
            IF NOT more AND (c & 16) <> 0 THEN
                x := x | ((-1)::bigint << (5 * k));
            END IF;
        END LOOP;
        IF m > 2 THEN
            x := x + runs[m - 1];  -- runs is 1-based: the run two before this one
        END IF;
        m := m + 1;
        runs[m] := x;
    END LOOP;
    RETURN runs;
END
$$;
COMMENT ON FUNCTION core.rle_counts(text) IS
    'The run lengths (background first) of a COCO compressed RLE counts string, or NULL when it is not one.';

CREATE OR REPLACE FUNCTION core.check_rle(p_rle jsonb, p_height integer, p_width integer, p_field text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = '' AS $$
-- 22023 naming the field unless p_rle is a non-empty mask of exactly the image's size.
DECLARE
    runs bigint[];
    total bigint;
    fg bigint;
BEGIN
    IF jsonb_typeof(p_rle) IS DISTINCT FROM 'object' OR NOT p_rle ?& ARRAY['size', 'counts']
       OR (SELECT count(*) FROM jsonb_object_keys(p_rle)) <> 2 THEN
        PERFORM core.invalid(p_field, 'must be {"size": [height, width], "counts": "..."} (COCO run-length encoding)');
    END IF;
    IF p_rle -> 'size' IS DISTINCT FROM jsonb_build_array(p_height, p_width) THEN
        PERFORM core.invalid(p_field || '.size', format('must be [%s, %s], the image''s height and width',
                                                        p_height, p_width));
    END IF;
    IF jsonb_typeof(p_rle -> 'counts') <> 'string' THEN
        PERFORM core.invalid(p_field || '.counts', 'must be the compressed string form of COCO run-length encoding '
                                                   '(as pycocotools.mask.encode writes it)');
    END IF;
    IF length(p_rle ->> 'counts') > 200000 THEN
        PERFORM core.invalid(p_field || '.counts', 'at most 200000 characters');
    END IF;
    runs := core.rle_counts(p_rle ->> 'counts');
    IF runs IS NULL OR cardinality(runs) = 0 OR EXISTS (SELECT 1 FROM unnest(runs) r WHERE r < 0) THEN
        PERFORM core.invalid(p_field || '.counts', 'is not valid COCO run-length encoding');
    END IF;
    SELECT sum(r), coalesce(sum(r) FILTER (WHERE n % 2 = 0), 0) INTO total, fg
      FROM unnest(runs) WITH ORDINALITY AS t(r, n);
    IF total <> p_height::bigint * p_width THEN
        PERFORM core.invalid(p_field || '.counts', format('runs cover %s pixels; the image has %s',
                                                          total, p_height::bigint * p_width));
    END IF;
    IF fg = 0 THEN
        PERFORM core.invalid(p_field, 'the mask has no pixel set');
    END IF;
END
$$;
COMMENT ON FUNCTION core.check_rle(jsonb, integer, integer, text) IS
    'Raises 22023 naming the field unless the value is a COCO RLE {size, counts} of the given image size, whose '
    'runs decode and cover every pixel and set at least one; counts at most 200,000 characters.';

CREATE OR REPLACE FUNCTION core.mask_measure(p_runs bigint[], p_height integer, p_width integer) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = '' AS $$
-- Area (pixels set) and greatest diameter of a mask given as column-major runs. The diameter is measured between
-- pixel corners (a 100x50 rectangle has sqrt(100^2 + 50^2)): the farthest pair of a set of squares lies on its
-- convex hull, and the hull needs only each column's topmost and bottommost corners, so the work is per column.
DECLARE
    top integer[] := array_fill(NULL::integer, ARRAY[p_width]);
    bot integer[] := array_fill(NULL::integer, ARRAY[p_width]);
    pos bigint := 0;
    area bigint := 0;
    s bigint;
    e bigint;
    col integer;
    r0 integer;
    r1 integer;
    xs integer[];
    ys integer[];
    hx integer[] := '{}';
    hy integer[] := '{}';
    h integer := 0;
    lower_size integer;
    i integer;
    diameter double precision;
BEGIN
    FOR i IN 1 .. cardinality(p_runs) LOOP
        IF i % 2 = 0 AND p_runs[i] > 0 THEN  -- runs alternate background, foreground
            area := area + p_runs[i];
            s := pos;
            e := pos + p_runs[i];
            WHILE s < e LOOP  -- a run may wrap from the bottom of one column to the top of the next
                col := (s / p_height)::integer + 1;
                r0 := (s % p_height)::integer;
                r1 := least(p_height::bigint, r0 + (e - s))::integer - 1;
                top[col] := least(top[col], r0);
                bot[col] := greatest(bot[col], r1);
                s := s + (r1 - r0 + 1);
            END LOOP;
        END IF;
        pos := pos + p_runs[i];
    END LOOP;
    IF area = 0 THEN
        RETURN jsonb_build_object('area_px', 0, 'diameter_px', 0);
    END IF;
    -- candidate corners: for each x, the smallest and the largest y (column c spans x = c-1 .. c)
    SELECT array_agg(pts.px ORDER BY pts.px, pts.py), array_agg(pts.py ORDER BY pts.px, pts.py) INTO xs, ys
      FROM (SELECT DISTINCT w.px, w.py
              FROM (SELECT v.x, min(v.y) AS lo, max(v.y) AS hi
                      FROM unnest(top, bot) WITH ORDINALITY AS t(tp, bt, c)
                      CROSS JOIN LATERAL (VALUES (c - 1, tp), (c, tp), (c - 1, bt + 1), (c, bt + 1)) v(x, y)
                     WHERE t.tp IS NOT NULL
                     GROUP BY v.x) q
             CROSS JOIN LATERAL (VALUES (q.x, q.lo), (q.x, q.hi)) w(px, py)) pts;
    -- Andrew's monotone chain: the lower hull left to right, then the upper hull right to left
    FOR i IN 1 .. cardinality(xs) LOOP
        WHILE h >= 2 AND (hx[h] - hx[h - 1])::bigint * (ys[i] - hy[h - 1])
                         - (hy[h] - hy[h - 1])::bigint * (xs[i] - hx[h - 1]) <= 0 LOOP
            h := h - 1;
        END LOOP;
        h := h + 1;
        hx[h] := xs[i];
        hy[h] := ys[i];
    END LOOP;
    lower_size := h + 1;
    FOR i IN REVERSE cardinality(xs) - 1 .. 1 LOOP
        WHILE h >= lower_size AND (hx[h] - hx[h - 1])::bigint * (ys[i] - hy[h - 1])
                                  - (hy[h] - hy[h - 1])::bigint * (xs[i] - hx[h - 1]) <= 0 LOOP
            h := h - 1;
        END LOOP;
        h := h + 1;
        hx[h] := xs[i];
        hy[h] := ys[i];
    END LOOP;
    SELECT max(sqrt(((a.ax - b.bx)::bigint ^ 2 + (a.ay - b.by)::bigint ^ 2)::double precision)) INTO diameter
      FROM unnest(hx[1:h], hy[1:h]) AS a(ax, ay), unnest(hx[1:h], hy[1:h]) AS b(bx, by);
    RETURN jsonb_build_object('area_px', area, 'diameter_px', round(diameter::numeric, 2));
END
$$;
COMMENT ON FUNCTION core.mask_measure(bigint[], integer, integer) IS
    'Area in pixels and greatest diameter (between pixel corners) of a mask given as column-major run lengths.';

CREATE OR REPLACE FUNCTION core.measure_region(p_region jsonb, p_index integer, p_pixels_per_mm numeric)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = '' AS $$
-- What is measured of one (already checked) region; millimetres only when the image has a scale.
DECLARE
    m jsonb := jsonb_build_object('index', p_index, 'type', p_region ->> 'type', 'label', p_region -> 'label');
    px numeric;
BEGIN
    IF p_region ->> 'type' = 'mask' THEN
        m := m || core.mask_measure(core.rle_counts(p_region -> 'rle' ->> 'counts'),
                                    (p_region -> 'rle' -> 'size' ->> 0)::integer,
                                    (p_region -> 'rle' -> 'size' ->> 1)::integer);
        IF p_pixels_per_mm > 0 THEN
            m := m || jsonb_build_object(
                'area_mm2', round((m ->> 'area_px')::numeric / (p_pixels_per_mm ^ 2), 3),
                'diameter_mm', round((m ->> 'diameter_px')::numeric / p_pixels_per_mm, 2));
        END IF;
    ELSIF p_region ->> 'type' = 'line' THEN
        px := sqrt(((p_region #>> '{points,1,0}')::numeric - (p_region #>> '{points,0,0}')::numeric) ^ 2
                   + ((p_region #>> '{points,1,1}')::numeric - (p_region #>> '{points,0,1}')::numeric) ^ 2);
        m := m || jsonb_build_object('length_px', round(px, 2));
        IF p_pixels_per_mm > 0 THEN
            m := m || jsonb_build_object('length_mm', round(px / p_pixels_per_mm, 2));
        END IF;
    END IF;
    RETURN m;
END
$$;
COMMENT ON FUNCTION core.measure_region(jsonb, integer, numeric) IS
    'Measurements of one checked region: masks area_px and diameter_px, lines length_px; _mm2/_mm with a scale.';

CREATE OR REPLACE FUNCTION api.region_measurements(item_id bigint, regions jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    w core.work_item;
    img core.image;
    labels text[];
    ppm numeric;
    given jsonb := regions;
BEGIN
    PERFORM core.require_signed_in();
    SELECT * INTO w FROM core.work_item x WHERE x.id = region_measurements.item_id;  -- under the caller's RLS
    IF NOT FOUND THEN
        PERFORM core.item_not_found(item_id);
    END IF;
    SELECT * INTO img FROM core.image i WHERE i.id = w.image_id;
    SELECT p.region_labels INTO labels FROM core.project p WHERE p.id = w.project_id;
    IF given IS NOT NULL AND length(given::text) > 1000000 THEN
        PERFORM core.invalid('regions', 'is larger than 1 MB');  -- the bound of a draft's whole content
    END IF;
    IF given IS NULL OR given = 'null'::jsonb THEN
        labels := NULL;  -- stored content was checked when written; labels renamed since do not stop measuring it
        given := coalesce((SELECT d.content FROM core.annotation_draft d
                            WHERE d.item_id = w.id AND d.author_id = auth.uid()),
                          (SELECT r.content FROM core.annotation_revision r WHERE r.item_id = w.id
                            ORDER BY r.revision_seq DESC LIMIT 1)) -> 'regions';
        IF given IS NULL OR jsonb_typeof(given) <> 'array' THEN
            RETURN '[]'::jsonb;
        END IF;
    END IF;
    PERFORM core.validate_regions(given, img.width, img.height, labels);
    ppm := CASE WHEN jsonb_typeof(img.metadata -> 'pixels_per_mm') = 'number'
                THEN (img.metadata ->> 'pixels_per_mm')::numeric END;
    RETURN (SELECT coalesce(jsonb_agg(core.measure_region(r, (n - 1)::integer, ppm) ORDER BY n), '[]')
              FROM jsonb_array_elements(given) WITH ORDINALITY AS t(r, n));
END
$$;
COMMENT ON FUNCTION api.region_measurements(bigint, jsonb) IS
    'Measures regions of an item you may open: the given list (checked like a draft''s regions), or when regions '
    'is null your draft''s, else the latest revision''s. One entry per region in order: {index, type, label}, for '
    'masks area_px and diameter_px (greatest distance, between pixel corners), for lines length_px; area_mm2, '
    'diameter_mm and length_mm when the image has a scale (metadata.pixels_per_mm). 404 for an item you cannot see.';

CREATE OR REPLACE FUNCTION api.region_labels(project_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = '' AS $$
BEGIN
    PERFORM core.require_member(project_id);
    RETURN (SELECT to_jsonb(p.region_labels) FROM core.project p WHERE p.id = region_labels.project_id);
END
$$;
COMMENT ON FUNCTION api.region_labels(bigint) IS
    'The labels regions of this project may carry, in the order the workspace offers them (a mask needs one).';

CREATE OR REPLACE FUNCTION api.set_region_labels(project_id bigint, labels text[])
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    before text[];
    cleaned text[];
    i integer;
BEGIN
    PERFORM core.require_role('admin');
    PERFORM core.in_organization(core.require_project_role('admin', project_id));
    IF labels IS NULL OR cardinality(labels) NOT BETWEEN 1 AND 100 THEN
        PERFORM core.invalid('labels', 'must list between 1 and 100 labels');
    END IF;
    FOR i IN 1 .. cardinality(labels) LOOP
        IF labels[i] IS NULL OR length(btrim(labels[i])) NOT BETWEEN 1 AND 200 OR labels[i] ~ '[[:cntrl:]]' THEN
            PERFORM core.invalid(format('labels[%s]', i - 1), 'must be text of 1 to 200 characters');
        END IF;
        IF lower(btrim(labels[i])) = ANY (SELECT lower(l) FROM unnest(cleaned) l) THEN
            PERFORM core.invalid(format('labels[%s]', i - 1), 'is listed twice');
        END IF;
        cleaned := cleaned || btrim(labels[i]);
    END LOOP;
    IF NOT 'lesion' = ANY (cleaned) THEN  -- the lesion mask is what is measured, exported (ISIC) and compared
        PERFORM core.invalid('labels', 'must keep lesion');
    END IF;
    SELECT p.region_labels INTO before FROM core.project p WHERE p.id = set_region_labels.project_id FOR UPDATE;
    UPDATE core.project p SET region_labels = cleaned WHERE p.id = set_region_labels.project_id;
    PERFORM core.audit('set_region_labels', 'project', project_id, jsonb_build_object('labels', before),
                       jsonb_build_object('labels', cleaned));
    RETURN to_jsonb(cleaned);
END
$$;
COMMENT ON FUNCTION api.set_region_labels(bigint, text[]) IS
    'Project admin: replaces the labels regions may carry (1-100, each 1-200 characters, no repeats ignoring case; '
    'trimmed; lesion always among them). Revisions already written keep their labels; new saves must use one of '
    'these.';

GRANT EXECUTE ON FUNCTION core.rle_counts(text), core.check_rle(jsonb, integer, integer, text),
                          core.mask_measure(bigint[], integer, integer), core.measure_region(jsonb, integer, numeric),
                          api.region_measurements(bigint, jsonb), api.region_labels(bigint)
    TO dl_annotator, dl_reviewer, dl_admin;
GRANT EXECUTE ON FUNCTION api.set_region_labels(bigint, text[]) TO dl_admin;
