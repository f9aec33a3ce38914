-- Regions (docs/segmentation.md): project region labels, masks in COCO run-length encoding checked in SQL (size,
-- decoding, sum, non-empty, length), lines and drawn polygons, and what api.region_measurements measures.
-- The RLE strings are pycocotools.mask.encode of masks drawn on the fixture's 1000x800 images (regions.py notes).
BEGIN;
SELECT plan(37);

SELECT * FROM tests.fixture(n_images => 2) \gset
CREATE TEMP TABLE rle (name text PRIMARY KEY, counts text);
GRANT SELECT ON rle TO PUBLIC;
INSERT INTO rle VALUES
    ('rect', '\al4b1^g000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000dbRa0'),       -- x 200..299, y 300..349: 5000 px, diameter sqrt(100^2 + 50^2)
    ('disc', 'Wei9d0Uh0>D:G8H8I6K4K6K4K6K4L4M2M4L4M2M4L4M2N2M4M2N2N2M4M2N2N2N2N2N2N2N2N2N2O0O2N2N2N2O0O2N2N2O0O2O0O2N2O0O2O0O2N2O0O2O0O2O000O2O0O2O000O2O0O2O000O2O00000O2O00000O2O0000000O2O00000000000O2O00000000000000000000000000000000000001N1000000000001N100000001N1000001N1000001N10001N101N10001N101N10001N101N101N2N101N101N2N101N101N2N2N101N2N2N2N101N2N2N2N2N2N2N2N2N2N3L3N2N2N3L3N2N3L4L3N3L4L3N3L4L5J5L5J5L5J7H8H9F<BP[g9'),       -- radius 100 around (500.5, 400.5): 31428 px
    ('corner', '0:fh00000000000000000000000000000000000000Pdmg0'),   -- x 0..19, y 0..9: the first pixel set (a first run of 0)
    ('wrap', 'ob82odTh0'),       -- (10, 799) and (11, 0): one run wrapping from a column's bottom to the next's top
    ('ring', 'Wei9d0Uh0>D:G8H8I6K4K6K4K6K4L4M2M4L4M2M4L4M2N2M4M2N2N2M4M2N2N2N2N2N2N2N2N2N2O0O2N2N2N2O0O2N2N2O0O2O0O2N2O0O2O0O2N2O0O2O0O2O000OPMS]O0lb0K^]O0ab0Ne]O0Zb0Nj]O0Vb0Nn]O0Qb0OS^O0la0NX^O0ga00[^O0da0N`^O0`a0Ob^O0]a00e^O0Za0Oh^O0Xa0Oj^O0Va0Ol^O0Sa00o^O0Pa0OR_O0n`00R_O0n`0OT_O0k`00W_O0h`00X_O0h`0OZ_O0f`00Z_O0f`0O\_O0c`01]_O0b`0O`_O0``00`_O0``0Ob_O0^`00b_O0^`00b_O0^`0Od_O0[`01e_O0Z`00f_O0Z`00f_O0Z`00f_O0Z`0Oh_O0X`00h_O0X`00h_O0X`00h_O0X`00h_O0X`00h_O0X`00h_O0X`00h_O0X`00h_O0X`00h_O0X`00h_O0X`00h_O0X`01f_O0Z`00f_O0Z`00f_O0Z`00f_O0[`0Oe_O0\`01b_O0^`00b_O0^`00b_O0^`01`_O0``00`_O0``01^_O0c`0O]_O0d`01Z_O0f`00Z_O0f`01X_O0h`00X_O0i`00U_O0l`01R_O0n`00R_O0n`01P_O0Qa00m^O0Ta01j^O0Va01h^O0Xa01f^O0[a00c^O0^a01`^O0`a02\^O0ea00Y^O0ha02T^O0ma01o]O0Rb02j]O0Vb02f]O0[b02_]O0bb05T]O0mb0P310001N101N101N2N101N101N2N101N101N2N2N101N2N2N2N101N2N2N2N2N2N2N2N2N2N3L3N2N2N3L3N2N3L4L3N3L4L3N3L4L5J5L5J5L5J7H8H9F<BP[g9'),       -- the disc with a hole of radius 40
    ('empty', 'PX]h0'),                                   -- nothing set
    ('small', '0T3');                                     -- a full 10x10 image
CREATE FUNCTION pg_temp.mask(p_name text, p_label text DEFAULT 'lesion', p_size jsonb DEFAULT '[800, 1000]')
RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('type', 'mask', 'label', p_label,
                              'rle', jsonb_build_object('size', p_size, 'counts', (SELECT counts FROM rle WHERE name = p_name)))
$$;
CREATE FUNCTION pg_temp.draft_with(p_regions jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('descriptors', '{}'::jsonb, 'regions', p_regions)
$$;
CREATE FUNCTION pg_temp.measure(p_item bigint, p_regions jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT api.region_measurements(p_item, p_regions)
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pg_temp TO PUBLIC;

-- labels
SELECT tests.act_as(:a1, 'annotator');
SELECT is(api.region_labels(:project), '["lesion", "pigment network", "dots/globules", "streaks", "blue-white veil",
                                          "regression structures", "vessels", "milia-like cysts"]'::jsonb,
          'api.region_labels: every project starts with the dermoscopic structures');
SELECT throws_ok(format('SELECT api.set_region_labels(%s, ARRAY[''x''])', :project), '42501', NULL,
                 'api.set_region_labels: an annotator cannot change them');
SELECT tests.act_as(:outsider, 'annotator');
SELECT throws_ok(format('SELECT api.region_labels(%s)', :project), 'P0002', NULL,
                 'api.region_labels: another project''s member is answered like a missing project');
SELECT tests.act_as(:admin, 'admin');
SELECT throws_ok(format('SELECT api.set_region_labels(%s, ARRAY[''lesion'', '' Lesion''])', :project), '22023',
                 'labels[1]: is listed twice', 'api.set_region_labels: a label twice (ignoring case) is refused');
SELECT throws_ok(format('SELECT api.set_region_labels(%s, ARRAY[]::text[])', :project), '22023',
                 'labels: must list between 1 and 100 labels', 'api.set_region_labels: an empty list is refused');
SELECT is(api.set_region_labels(:project, ARRAY[' lesion ', 'pigment network', 'scar']),
          '["lesion", "pigment network", "scar"]'::jsonb, 'api.set_region_labels: the admin sets them, trimmed');
SELECT tests.as_superuser();
SELECT is((SELECT count(*) FROM audit.event WHERE action = 'set_region_labels' AND entity_id = :project)::int, 1,
          'api.set_region_labels: audited');

-- masks through the annotator's draft
SELECT tests.act_as(:a1, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS item \gset
SELECT lives_ok(format('SELECT api.save_draft(%s, %L)', :item,
                       pg_temp.draft_with(jsonb_build_array(pg_temp.mask('disc'), pg_temp.mask('rect', 'scar')))),
                'api.save_draft: a draft with two masks is kept');
SELECT is((SELECT content -> 'regions' -> 0 -> 'rle' ->> 'counts' FROM core.annotation_draft WHERE item_id = :item),
          (SELECT counts FROM rle WHERE name = 'disc'), 'the mask is stored exactly as sent');
SELECT throws_ok(format('SELECT api.save_draft(%s, %L)', :item,
                        pg_temp.draft_with(jsonb_build_array(pg_temp.mask('disc', 'lesion', '[1000, 800]')))),
                 '22023', 'regions[0].rle.size: must be [800, 1000], the image''s height and width',
                 'a mask of another size (height and width swapped) is refused');
SELECT throws_ok(format('SELECT api.save_draft(%s, %L)', :item,
                        pg_temp.draft_with(jsonb_build_array(pg_temp.mask('small')))),
                 '22023', 'regions[0].rle.counts: runs cover 100 pixels; the image has 800000',
                 'counts that do not cover the image are refused');
SELECT throws_ok(format('SELECT api.save_draft(%s, %L)', :item,
                        pg_temp.draft_with(jsonb_build_array(pg_temp.mask('empty')))),
                 '22023', 'regions[0].rle: the mask has no pixel set', 'an empty mask is refused');
SELECT throws_ok(format('SELECT api.save_draft(%s, %L)', :item, pg_temp.draft_with(jsonb_build_array(
                            jsonb_build_object('type', 'mask', 'label', 'lesion', 'rle',
                                               jsonb_build_object('size', '[800, 1000]'::jsonb,
                                                                  'counts', repeat('0', 200001)))))),
                 '22023', 'regions[0].rle.counts: at most 200000 characters', 'an oversized mask is refused');
SELECT throws_ok(format('SELECT api.save_draft(%s, %L)', :item, pg_temp.draft_with(jsonb_build_array(
                            jsonb_build_object('type', 'mask', 'label', 'lesion', 'rle',
                                               jsonb_build_object('size', '[800, 1000]'::jsonb, 'counts', 'ab c~'))))),
                 '22023', 'regions[0].rle.counts: is not valid COCO run-length encoding', 'counts that do not decode are refused');
SELECT throws_ok(format('SELECT api.save_draft(%s, %L)', :item, pg_temp.draft_with(jsonb_build_array(
                            jsonb_build_object('type', 'mask', 'label', 'lesion', 'rle',
                                               jsonb_build_object('size', '[800, 1000]'::jsonb, 'counts', '[0, 5]'::jsonb))))),
                 '22023', NULL, 'the list form of counts is refused (the compressed string only)');
SELECT throws_ok(format('SELECT api.save_draft(%s, %L)', :item,
                        pg_temp.draft_with(jsonb_build_array(pg_temp.mask('rect', NULL)))),
                 '22023', 'regions[0].label: is required for a mask (one of the project''s region labels)',
                 'a mask without a label is refused');
SELECT throws_ok(format('SELECT api.save_draft(%s, %L)', :item,
                        pg_temp.draft_with(jsonb_build_array(pg_temp.mask('rect', 'streaks')))),
                 '22023', 'regions[0].label: must be one of the project''s region labels: lesion, pigment network, scar',
                 'a label the project does not list is refused');
SELECT is((SELECT jsonb_array_length(content -> 'regions') FROM core.annotation_draft WHERE item_id = :item), 2,
          'nothing refused changed the stored draft');

-- lines and drawn polygons
SELECT lives_ok(format('SELECT api.save_draft(%s, %L)', :item, pg_temp.draft_with(
                    '[{"type": "line", "points": [[100, 100], [400, 500]]},
                      {"type": "polygon", "drawn": "spline", "label": "lesion", "points": [[1, 1], [50, 5], [20, 40]]}]')),
                'lines and spline outlines are kept');
SELECT throws_ok(format('SELECT api.save_draft(%s, %L)', :item, pg_temp.draft_with(
                     '[{"type": "line", "points": [[100, 100], [100, 100]]}]')),
                 '22023', 'regions[0].points: a line needs two different points', 'a line of no length is refused');
SELECT throws_ok(format('SELECT api.save_draft(%s, %L)', :item, pg_temp.draft_with(
                     '[{"type": "line", "points": [[1, 1], [2, 2], [3, 3]]}]')),
                 '22023', 'regions[0].points: a line is two points [[x1, y1], [x2, y2]]', 'a line of three points is refused');
SELECT throws_ok(format('SELECT api.save_draft(%s, %L)', :item, pg_temp.draft_with(
                     '[{"type": "line", "points": [[1, 1], [1001, 2]]}]')),
                 '22023', NULL, 'a line leaving the image is refused');
SELECT throws_ok(format('SELECT api.save_draft(%s, %L)', :item, pg_temp.draft_with(
                     '[{"type": "polygon", "drawn": "wobbly", "points": [[1, 1], [50, 5], [20, 40]]}]')),
                 '22023', 'regions[0].drawn: must be freehand or spline', 'an unknown drawing kind is refused');

-- measurements
SELECT is(pg_temp.measure(:item, jsonb_build_array(pg_temp.mask('rect'))) -> 0,
          '{"index": 0, "type": "mask", "label": "lesion", "area_px": 5000, "diameter_px": 111.80}'::jsonb,
          'api.region_measurements: a 100x50 rectangle: 5000 px, diameter between corners 111.80 px');
SELECT is(pg_temp.measure(:item, jsonb_build_array(pg_temp.mask('disc'))) -> 0 ->> 'diameter_px', '201.38',
          'api.region_measurements: a disc of radius 100: diameter 201.38 px (the pixel grid)');
SELECT is((pg_temp.measure(:item, jsonb_build_array(pg_temp.mask('ring'), pg_temp.mask('corner'), pg_temp.mask('wrap')))
           -> 0 ->> 'area_px')::int, 26404, 'api.region_measurements: a hole is not area');
SELECT is(pg_temp.measure(:item, jsonb_build_array(pg_temp.mask('ring'), pg_temp.mask('corner'), pg_temp.mask('wrap')))
          #>> '{1,diameter_px}', '22.36', 'api.region_measurements: a mask starting at the first pixel (a first run of 0)');
SELECT is(pg_temp.measure(:item, jsonb_build_array(pg_temp.mask('wrap'))) -> 0 ->> 'diameter_px', '800.00',
          'api.region_measurements: a run wrapping across columns is two pixels a column apart');
SELECT tests.as_superuser();
UPDATE core.image SET metadata = metadata || '{"pixels_per_mm": 10}' WHERE id = (SELECT image_id FROM core.work_item WHERE id = :item);
SELECT tests.act_as(:a1, 'annotator');
SELECT is(pg_temp.measure(:item, jsonb_build_array(pg_temp.mask('rect'), '{"type": "line", "points": [[0, 0], [30, 40]]}'::jsonb)),
          '[{"index": 0, "type": "mask", "label": "lesion", "area_px": 5000, "diameter_px": 111.80, "area_mm2": 50.000, "diameter_mm": 11.18},
            {"index": 1, "type": "line", "label": null, "length_px": 50.00, "length_mm": 5.00}]'::jsonb,
          'api.region_measurements: millimetres with the image''s scale');
SELECT is(jsonb_array_length(api.region_measurements(:item)), 2, 'api.region_measurements: without regions, your draft''s');
SELECT throws_ok(format('SELECT api.region_measurements(%s, %L)', :item, '[{"type": "mask", "label": "lesion"}]'),
                 '22023', NULL, 'api.region_measurements: regions are checked first');
SELECT throws_ok(format('SELECT api.save_draft(%s, %L)', :item, pg_temp.draft_with(
                     '[{"type": "line", "points": [[0, 0], [30, 40]], "length_mm": 99}]')),
                 '22023', 'regions[0].length_mm: is not a field of a line region',
                 'api.save_draft: a region carries only its own fields (no figure made up by the client)');
SELECT throws_ok(format('SELECT api.region_measurements(%s, %L)', :item,
                        (SELECT jsonb_agg(pg_temp.mask('disc')) FROM generate_series(1, 2500))),
                 '22023', 'regions: is larger than 1 MB', 'api.region_measurements: bounded like a draft');
SELECT tests.act_as(:admin, 'admin');
SELECT throws_ok(format('SELECT api.set_region_labels(%s, ARRAY[''streaks''])', :project), '22023',
                 'labels: must keep lesion', 'api.set_region_labels: lesion stays (measured, exported, compared)');
SELECT api.set_region_labels(:project, ARRAY['lesion']);
SELECT tests.act_as(:a1, 'annotator');
SELECT is(jsonb_array_length(api.region_measurements(:item)), 2,
          'api.region_measurements: stored content is measured even after its labels were renamed');
SELECT throws_ok(format('SELECT api.region_measurements(%s, %L)', :item, jsonb_build_array(pg_temp.mask('rect', 'scar'))),
                 '22023', NULL, 'api.region_measurements: given regions still need current labels');
SELECT tests.act_as(:outsider, 'annotator');
SELECT throws_ok(format('SELECT api.region_measurements(%s)', :item), 'P0002', NULL,
                 'api.region_measurements: an item you cannot see is answered like a missing one');

SELECT * FROM finish();
ROLLBACK;
