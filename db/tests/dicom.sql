-- DICOM: a project's de-identification key is made once and never changes; its DICOMweb source is validated and
-- audited; both belong to the project's admins only; an image uploaded as DICOM names its de-identified file.
BEGIN;
SELECT plan(16);

SELECT * FROM tests.fixture(n_images => 1) \gset
SELECT tests.act_as(:admin, 'admin');
SELECT api.dicom_deid_key(:project) AS k1 \gset
SELECT api.dicom_deid_key(:project) AS k2 \gset
SELECT is(:'k1'::jsonb, :'k2'::jsonb, 'the key is made on first use and the same ever after (consistent re-mapping)');
SELECT ok(length(:'k1'::jsonb ->> 'secret') >= 64, 'the secret is 64 random hex characters');
SELECT ok((:'k1'::jsonb ->> 'date_offset_days')::int BETWEEN -3650 AND -365, 'dates move 1 to 10 years back');

SELECT throws_ok(format('SELECT api.dicom_deid_key(%s)', :project + 100000), 'P0002', NULL,
                 'another project answers like one that does not exist');
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok(format('SELECT api.dicom_deid_key(%s)', :project), '42501', NULL, 'an annotator may not read it');
SELECT tests.act_as(:outsider, 'admin');
SELECT throws_ok(format('SELECT api.dicom_deid_key(%s)', :project), 'P0002', NULL,
                 'nor may an admin of other projects');

SELECT tests.act_as(:admin, 'admin');
SELECT is(api.dicomweb_source(:project) -> 'base_url', 'null'::jsonb, 'no source until one is set (an answer, not a 404)');
SELECT throws_ok(format($$SELECT api.set_dicomweb_source(%s, 'file:///etc/passwd')$$, :project), '22023',
                 'base_url: must be an http(s) URL without query, e.g. http://pacs:8042/dicom-web', 'only http(s)');
SELECT throws_ok(format($$SELECT api.set_dicomweb_source(%s, 'http://pacs/x?y=1')$$, :project), '22023', NULL,
                 'no query string');
SELECT is(api.set_dicomweb_source(:project, ' http://127.0.0.1:8042/dicom-web/ ') ->> 'base_url',
          'http://127.0.0.1:8042/dicom-web', 'trimmed, without the trailing slash');
SELECT is(api.dicomweb_source(:project) ->> 'base_url', 'http://127.0.0.1:8042/dicom-web', 'and read back');
SELECT api.set_dicomweb_source(:project, 'https://pacs.example.org/dicom-web');
SELECT tests.as_superuser();
SELECT results_eq(format($$SELECT before ->> 'base_url', after ->> 'base_url' FROM audit.event
                            WHERE action = 'set_dicomweb_source' AND entity_id = %s ORDER BY id$$, :project),
                  $$VALUES (NULL, 'http://127.0.0.1:8042/dicom-web'),
                           ('http://127.0.0.1:8042/dicom-web', 'https://pacs.example.org/dicom-web')$$,
                  'each change is audited with what it replaced');

-- an image registered with DICOM metadata names its de-identified file; a photograph does not
SELECT tests.act_as(:admin, 'admin');
SELECT (api.register_image(:project, 'images/x/' || repeat('d', 64) || '.png', repeat('d', 64), 64, 64, 'image/png',
                           NULL, NULL, '{"dicom": {"frames": 2, "modality": "XC", "patient_pseudonym": "DL-AB12"}}')
                           ->> 'id')::bigint AS dimg \gset
SELECT is(api.image_file(:dimg) ->> 'dicom_key', format('dicom/%s/%s.dcm', :project, repeat('d', 64)),
          'a DICOM upload names its de-identified file');
SELECT is(api.image_file(:img1) ->> 'dicom_key', NULL, 'a photograph has none');


-- the export tells ML engineers where the de-identified file is and whose (pseudonymous) patient it is
SELECT tests.as_superuser();
SELECT is((SELECT core.export_record(w, i, NULL::core.annotation_revision) -> 'dicom'
             FROM core.work_item w JOIN core.image i ON i.id = w.image_id WHERE i.id = :dimg LIMIT 1),
          jsonb_build_object('storage_key', format('dicom/%s/%s.dcm', :project, repeat('d', 64)),
                             'patient', 'DL-AB12', 'modality', 'XC', 'frames', 2),
          'an export record of a DICOM image carries its file, patient pseudonym, modality and frames');
SELECT is((SELECT core.export_record(w, i, NULL::core.annotation_revision) -> 'dicom'
             FROM core.work_item w JOIN core.image i ON i.id = w.image_id WHERE i.id = :img1 LIMIT 1),
          'null'::jsonb, 'a photograph''s has none');

SELECT * FROM finish();
ROLLBACK;
