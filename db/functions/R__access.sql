-- The access audit (audit.access, V23): every read of image bytes or of an item's document is recorded in the
-- transaction that serves it; organization admins and analysts ask who viewed what. The reads stay STABLE (GET
-- works for them): the row is written by core.record_access, a VOLATILE function, which a STABLE one may call.

CREATE OR REPLACE FUNCTION core.record_access(p_image bigint, p_item bigint, p_what text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    INSERT INTO audit.access (organization_id, project_id, image_id, item_id, actor_id, key_id, what, request_id)
    SELECT p.organization_id, i.project_id, i.id, p_item, auth.uid(), auth.key_id(), p_what,
           auth.claims() ->> 'request_id'
      FROM core.image i JOIN core.project p ON p.id = i.project_id WHERE i.id = p_image;
END
$$;
COMMENT ON FUNCTION core.record_access(bigint, bigint, text) IS
    'Records one read (original, thumb, standardised, dicom, frame, item) by the caller in audit.access.';
GRANT EXECUTE ON FUNCTION core.record_access(bigint, bigint, text) TO dl_annotator, dl_reviewer, dl_admin;

CREATE OR REPLACE FUNCTION core.item_read(p_item bigint, p_full boolean) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
-- core.item_document, as the caller sees it, and the read recorded.
DECLARE
    doc jsonb := core.item_document(p_item, p_full);
BEGIN
    IF doc IS NOT NULL THEN
        PERFORM core.record_access((doc -> 'image' ->> 'id')::bigint, p_item, 'item');
    END IF;
    RETURN doc;
END
$$;
COMMENT ON FUNCTION core.item_read(bigint, boolean) IS
    'An item''s document (core.item_document) for the caller, with the read recorded in audit.access.';
GRANT EXECUTE ON FUNCTION core.item_read(bigint, boolean) TO dl_annotator, dl_reviewer, dl_admin;

CREATE OR REPLACE FUNCTION api.image_access(image_id bigint, max_rows integer DEFAULT 1000)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- For the organization's admins and analysts: "who looked at this patient's images".
DECLARE
    pid bigint;
BEGIN
    PERFORM core.require_signed_in();
    SELECT i.project_id INTO pid FROM core.image i WHERE i.id = image_access.image_id;
    IF pid IS NULL OR NOT pid = ANY (auth.analyst_projects()) THEN
        RAISE EXCEPTION 'image % not found', image_id USING ERRCODE = 'P0002';
    END IF;
    RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'at', a.at, 'what', a.what, 'item_id', a.item_id, 'request_id', a.request_id,
                       'actor', CASE WHEN a.actor_id IS NOT NULL THEN jsonb_build_object(
                                    'id', a.actor_id, 'display_name', u.display_name, 'email', u.email) END,
                       'key', (SELECT k.prefix FROM auth.api_key k WHERE k.id = a.key_id)) ORDER BY a.at DESC), '[]')
              FROM (SELECT * FROM audit.access x WHERE x.image_id = image_access.image_id
                     ORDER BY x.at DESC LIMIT greatest(1, least(coalesce(max_rows, 1000), 10000))) a
              LEFT JOIN auth."user" u ON u.id = a.actor_id);
END
$$;
COMMENT ON FUNCTION api.image_access(bigint, integer) IS
    'Organization admin or analyst: who read the image''s bytes or an item of it, what and when, newest first.';
GRANT EXECUTE ON FUNCTION api.image_access(bigint, integer) TO dl_admin, dl_analyst;

CREATE OR REPLACE VIEW analytics.image_access WITH (security_barrier) AS
SELECT a.at, a.organization_id, a.project_id, a.image_id, a.item_id, a.actor_id, a.key_id, a.what, a.request_id
  FROM audit.access a WHERE a.project_id = ANY (auth.analyst_projects());
COMMENT ON VIEW analytics.image_access IS
    'The access audit of your organizations'' projects: who read which image or item, what, when.';
GRANT SELECT ON analytics.image_access TO dl_analyst;
