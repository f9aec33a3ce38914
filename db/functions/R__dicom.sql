-- DICOM: the de-identification key a project's uploads are de-identified with, and its DICOMweb source.

CREATE OR REPLACE FUNCTION api.dicom_deid_key(project_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_role('admin');
    k core.project_deid;
BEGIN
    PERFORM core.require_project_role('admin', project_id);
    -- created on first use: a random secret, and a shift of 1 to 10 years into the past
    INSERT INTO core.project_deid (project_id, secret, date_offset_days)
    VALUES (dicom_deid_key.project_id,
            replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''),
            -(365 + floor(random() * 3285))::integer)
    ON CONFLICT ON CONSTRAINT project_deid_pkey DO NOTHING;
    SELECT * INTO k FROM core.project_deid d WHERE d.project_id = dicom_deid_key.project_id;
    RETURN jsonb_build_object('secret', k.secret, 'date_offset_days', k.date_offset_days);
END
$$;
COMMENT ON FUNCTION api.dicom_deid_key(bigint) IS
    'Admin of the project (used by the upload and DICOMweb import routes): the key DICOM files of this project are '
    'de-identified with — the secret of the keyed hash that re-maps UIDs and patient IDs, and the date shift in '
    'days. Created on first use, never changed, so re-mapping stays consistent.';

CREATE OR REPLACE FUNCTION api.set_dicomweb_source(project_id bigint, base_url text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_role('admin');
    url text := rtrim(btrim(base_url), '/');
    before jsonb;
BEGIN
    PERFORM core.require_project_role('admin', project_id);
    IF url IS NULL OR url !~ '^https?://[^\s/?#]+(/[^\s?#]*)?$' OR length(url) > 1000 THEN
        PERFORM core.invalid('base_url', 'must be an http(s) URL without query, e.g. http://pacs:8042/dicom-web');
    END IF;
    SELECT to_jsonb(s) - 'updated_at' INTO before FROM core.dicomweb_source s
     WHERE s.project_id = set_dicomweb_source.project_id;
    INSERT INTO core.dicomweb_source AS s (project_id, base_url, updated_by)
    VALUES (set_dicomweb_source.project_id, url, me)
    ON CONFLICT ON CONSTRAINT dicomweb_source_pkey
    DO UPDATE SET base_url = excluded.base_url, updated_by = excluded.updated_by, updated_at = now();
    PERFORM core.audit('set_dicomweb_source', 'project', project_id, before,
                       jsonb_build_object('base_url', url));
    RETURN jsonb_build_object('project_id', project_id, 'base_url', url);
END
$$;
COMMENT ON FUNCTION api.set_dicomweb_source(bigint, text) IS
    'Admin: the DICOMweb base URL (QIDO-RS and WADO-RS, e.g. http://pacs:8042/dicom-web) this project searches and '
    'imports series from. Audited.';

CREATE OR REPLACE FUNCTION api.dicomweb_source(project_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_role('admin');
    doc jsonb;
BEGIN
    PERFORM core.require_project_role('admin', project_id);
    SELECT jsonb_build_object('project_id', s.project_id, 'base_url', s.base_url, 'updated_at', s.updated_at)
      INTO doc FROM core.dicomweb_source s WHERE s.project_id = dicomweb_source.project_id;
    -- none set yet is an answer, not an error (the admin page asks on every load)
    RETURN coalesce(doc, jsonb_build_object('project_id', project_id, 'base_url', NULL, 'updated_at', NULL));
END
$$;
COMMENT ON FUNCTION api.dicomweb_source(bigint) IS
    'Admin: the DICOMweb base URL configured for the project ({project_id, base_url, updated_at}; base_url null '
    'while none is set).';

GRANT EXECUTE ON FUNCTION api.dicom_deid_key(bigint), api.set_dicomweb_source(bigint, text),
                          api.dicomweb_source(bigint) TO dl_admin;
