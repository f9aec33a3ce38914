-- What the HTTP layer needs to serve image bytes: the storage keys of an image the caller may see, the read
-- recorded in the access audit (core.record_access, R__access).

CREATE OR REPLACE FUNCTION api.image_file(image_id bigint, variant text DEFAULT 'original')
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    doc jsonb;
BEGIN
    PERFORM core.require_signed_in();
    IF variant IS NULL OR variant NOT IN ('original', 'thumb', 'standardised', 'dicom', 'frame') THEN
        PERFORM core.invalid('variant', 'must be original, thumb, standardised, dicom or frame');
    END IF;
    -- runs under the caller's row-level security: an image outside their projects is simply not found
    SELECT jsonb_build_object('id', i.id, 'storage_key', i.storage_key, 'media_type', i.media_type,
                              'sha256', i.sha256, 'thumb_key', 'thumbs/' || i.project_id || '/' || i.sha256 || '.jpg',
                              'status', i.status,
                              'dicom_key', CASE WHEN i.metadata ? 'dicom'
                                                THEN 'dicom/' || i.project_id || '/' || i.sha256 || '.dcm' END,
                              'standardised_key', (core.ai_latest(i.id, 'crop')).payload -> 'standardised'
                                                  ->> 'storage_key')
      INTO doc FROM core.image i WHERE i.id = image_file.image_id AND i.status <> 'removed';
    IF doc IS NULL THEN
        RAISE EXCEPTION 'image % not found', image_id USING ERRCODE = 'P0002';
    END IF;
    PERFORM core.record_access(image_id, NULL, variant);
    -- the audit row is committed with the read; without waiting for the disk: a normal shutdown flushes it, only a
    -- crash of the server within a fraction of a second could lose it (images are read far more than written)
    PERFORM set_config('synchronous_commit', 'off', true);
    RETURN doc;
END
$$;
COMMENT ON FUNCTION api.image_file(bigint, text) IS
    'Where the bytes of an image you may see are stored (used by GET /images/{id} and its thumb, standardised, '
    'dicom and frames variants), with the read recorded in the access audit; 404 for an image outside your '
    'projects or removed from the dataset.';
GRANT EXECUTE ON FUNCTION api.image_file(bigint, text) TO dl_annotator, dl_reviewer, dl_admin;
