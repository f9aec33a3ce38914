-- Projects, membership and image registration (admin).

CREATE OR REPLACE FUNCTION core.project_json(p_project bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT jsonb_build_object('id', p.id, 'name', p.name, 'description', p.description,
                              'review_stages', p.review_stages, 'lock_minutes', p.lock_minutes)
      FROM core.project p WHERE p.id = p_project
$$;

CREATE OR REPLACE FUNCTION api.create_project(name text, description text DEFAULT '', review_stages integer DEFAULT 1,
                                              lock_minutes integer DEFAULT 30)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_role('admin');
    pid bigint;
BEGIN
    IF review_stages NOT IN (1, 2) THEN
        PERFORM core.invalid('review_stages', 'must be 1 or 2');
    END IF;
    IF lock_minutes NOT BETWEEN 1 AND 1440 THEN
        PERFORM core.invalid('lock_minutes', 'must be between 1 and 1440');
    END IF;
    INSERT INTO core.project (name, description, review_stages, lock_minutes, created_by)
    VALUES (create_project.name, coalesce(create_project.description, ''), create_project.review_stages,
            create_project.lock_minutes, me)
    RETURNING id INTO pid;
    INSERT INTO core.project_member (project_id, user_id) VALUES (pid, me);
    PERFORM core.audit('create_project', 'project', pid, NULL, core.project_json(pid));
    RETURN core.project_json(pid);
END
$$;
COMMENT ON FUNCTION api.create_project(text, text, integer, integer) IS
    'Admin: creates a project (1 or 2 review stages, lock duration in minutes) with the caller as a member.';

CREATE OR REPLACE FUNCTION api.add_project_member(project_id bigint, user_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    PERFORM core.require_role('admin');
    PERFORM core.require_member(project_id);
    IF NOT EXISTS (SELECT 1 FROM auth."user" u WHERE u.id = user_id) THEN
        RAISE EXCEPTION 'user % not found', user_id USING ERRCODE = 'P0002';
    END IF;
    INSERT INTO core.project_member (project_id, user_id) VALUES (project_id, user_id)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        PERFORM core.audit('add_project_member', 'project', project_id, NULL,
                           jsonb_build_object('user_id', user_id));
    END IF;
    RETURN jsonb_build_object('project_id', project_id, 'user_id', user_id);
END
$$;
COMMENT ON FUNCTION api.add_project_member(bigint, bigint) IS
    'Admin: lets a user see and work in a project (idempotent).';

CREATE OR REPLACE FUNCTION api.register_image(project_id bigint, storage_key text, sha256 text, width integer,
                                              height integer, media_type text, source_class text DEFAULT NULL,
                                              upload_batch text DEFAULT NULL, metadata jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_role('admin');
    existing bigint;
    new_id bigint;
BEGIN
    PERFORM core.require_member(project_id);
    IF media_type NOT IN ('image/jpeg', 'image/png', 'image/tiff', 'image/webp', 'application/dicom') THEN
        PERFORM core.invalid('media_type', 'must be image/jpeg, image/png, image/tiff, image/webp or application/dicom');
    END IF;
    IF metadata IS NOT NULL AND jsonb_typeof(metadata) <> 'object' THEN
        PERFORM core.invalid('metadata', 'must be a JSON object');
    END IF;
    INSERT INTO core.image (project_id, storage_key, sha256, width, height, media_type, source_class,
                            upload_batch, metadata, uploaded_by)
    VALUES (project_id, storage_key, lower(sha256), width, height, media_type, source_class, upload_batch,
            coalesce(metadata, '{}'), me)
    ON CONFLICT ON CONSTRAINT image_project_id_sha256_key DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN
        -- a re-upload of the same bytes: reported, not duplicated
        SELECT i.id INTO existing FROM core.image i WHERE i.project_id = register_image.project_id
                                                       AND i.sha256 = lower(register_image.sha256);
        RETURN jsonb_build_object('id', existing, 'duplicate', true);
    END IF;
    PERFORM core.audit('register_image', 'image', new_id, NULL,
                       jsonb_build_object('project_id', project_id, 'sha256', lower(sha256),
                                          'source_class', source_class, 'upload_batch', upload_batch));
    RETURN jsonb_build_object('id', new_id, 'duplicate', false,
                              'items_created', (SELECT count(*) FROM core.work_item w WHERE w.image_id = new_id));
END
$$;
COMMENT ON FUNCTION api.register_image(bigint, text, text, integer, integer, text, text, text, jsonb) IS
    'Admin: records an uploaded image (bytes already stored under storage_key). A second upload of the same '
    'sha256 in the project returns the existing id with duplicate=true. Active matching rules create items.';

GRANT EXECUTE ON FUNCTION api.create_project(text, text, integer, integer) TO dl_admin;
GRANT EXECUTE ON FUNCTION api.add_project_member(bigint, bigint) TO dl_admin;
GRANT EXECUTE ON FUNCTION api.register_image(bigint, text, text, integer, integer, text, text, text, jsonb)
    TO dl_admin;
