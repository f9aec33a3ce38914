-- What the HTTP layer needs to serve image bytes: the storage keys of an image the caller may see.

CREATE OR REPLACE FUNCTION api.image_file(image_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    doc jsonb;
BEGIN
    PERFORM core.require_signed_in();
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
    RETURN doc;
END
$$;
COMMENT ON FUNCTION api.image_file(bigint) IS
    'Where the bytes of an image you may see are stored (used by GET /images/{id}, and for a DICOM upload its '
    'de-identified file by GET /images/{id}/frames/{n}); 404 for an image outside your projects or removed from '
    'the dataset.';

GRANT EXECUTE ON FUNCTION api.image_file(bigint) TO dl_annotator, dl_reviewer, dl_admin;
