-- Projects, their members' roles, and image registration (admin).

CREATE OR REPLACE FUNCTION core.project_json(p_project bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT jsonb_build_object('id', p.id, 'name', p.name, 'description', p.description,
                              'review_stages', p.review_stages, 'lock_minutes', p.lock_minutes,
                              'organization_id', p.organization_id)
      FROM core.project p WHERE p.id = p_project
$$;
COMMENT ON FUNCTION core.project_json(bigint) IS
    'A project as JSON (id, name, description, review_stages, lock_minutes, organization_id): what '
    'api.create_project answers and audits, and the project overview starts from.';

CREATE OR REPLACE FUNCTION api.create_project(name text, description text DEFAULT '', review_stages integer DEFAULT 1,
                                              lock_minutes integer DEFAULT 30, organization_id bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_role('admin');
    org bigint := core.own_admin_org(organization_id);  -- the operator creates organizations, not their projects
    pid bigint;
BEGIN
    IF review_stages NOT IN (1, 2) THEN
        PERFORM core.invalid('review_stages', 'must be 1 or 2');
    END IF;
    IF lock_minutes NOT BETWEEN 1 AND 1440 THEN
        PERFORM core.invalid('lock_minutes', 'must be between 1 and 1440');
    END IF;
    INSERT INTO core.project (name, description, review_stages, lock_minutes, created_by, organization_id)
    VALUES (create_project.name, coalesce(create_project.description, ''), create_project.review_stages,
            create_project.lock_minutes, me, org)
    RETURNING id INTO pid;
    INSERT INTO core.project_member (project_id, user_id, admin) VALUES (pid, me, true);
    PERFORM core.audit('create_project', 'project', pid, NULL, core.project_json(pid));
    RETURN core.project_json(pid);
END
$$;
COMMENT ON FUNCTION api.create_project(text, text, integer, integer, bigint) IS
    'Organization admin: creates a project of your organization (organization_id may be omitted when you '
    'administer one; 1 or 2 review stages, lock duration in minutes) with you as its admin.';

CREATE OR REPLACE FUNCTION core.check_project_roles(p_roles text[]) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE SET search_path = '' AS $$
DECLARE
    r text;
BEGIN
    IF p_roles IS NULL THEN
        PERFORM core.invalid('roles', 'is required (a list of annotator, reviewer, admin; may be empty)');
    END IF;
    FOREACH r IN ARRAY p_roles LOOP
        IF r IS NULL OR r NOT IN ('annotator', 'reviewer', 'admin') THEN
            PERFORM core.invalid('roles', format('unknown project role %L (annotator, reviewer, admin)', r));
        END IF;
    END LOOP;
    RETURN p_roles;
END
$$;
COMMENT ON FUNCTION core.check_project_roles(text[]) IS
    'The roles list of a project membership, or 22023 naming the unknown role.';

CREATE OR REPLACE FUNCTION core.member_json(p_project bigint, p_user bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT jsonb_build_object('project_id', m.project_id, 'user_id', m.user_id,
                              'roles', array_remove(ARRAY[CASE WHEN m.annotator THEN 'annotator' END,
                                                          CASE WHEN m.reviewer THEN 'reviewer' END,
                                                          CASE WHEN m.admin THEN 'admin' END], NULL),
                              'review_level', m.review_level, 'expertise', m.expertise)
      FROM core.project_member m WHERE m.project_id = p_project AND m.user_id = p_user
$$;
COMMENT ON FUNCTION core.member_json(bigint, bigint) IS 'One project membership: roles, review level, expertise.';

CREATE OR REPLACE FUNCTION api.add_project_member(project_id bigint, user_id bigint,
                                                  roles text[] DEFAULT '{annotator}', review_level integer DEFAULT 1,
                                                  expertise text[] DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    before jsonb;
BEGIN
    PERFORM core.require_role('admin');
    PERFORM core.require_project_role('admin', project_id);
    PERFORM core.check_project_roles(roles);
    IF review_level IS NULL OR review_level NOT IN (1, 2) THEN
        PERFORM core.invalid('review_level', 'must be 1 or 2');
    END IF;
    -- only people of the project's organization (the trigger says so too, as P0002)
    IF NOT EXISTS (SELECT 1 FROM core.org_member o JOIN core.project p ON p.organization_id = o.organization_id
                    WHERE p.id = add_project_member.project_id AND o.user_id = add_project_member.user_id) THEN
        RAISE EXCEPTION 'user % not found', user_id USING ERRCODE = 'P0002';
    END IF;
    before := core.member_json(project_id, user_id);
    INSERT INTO core.project_member AS m (project_id, user_id, annotator, reviewer, admin, review_level, expertise)
    VALUES (project_id, user_id, 'annotator' = ANY (roles), 'reviewer' = ANY (roles), 'admin' = ANY (roles),
            review_level, coalesce(expertise, '{}'))
    ON CONFLICT ON CONSTRAINT project_member_pkey DO UPDATE
       SET annotator = EXCLUDED.annotator, reviewer = EXCLUDED.reviewer, admin = EXCLUDED.admin,
           review_level = EXCLUDED.review_level, expertise = EXCLUDED.expertise;
    PERFORM core.audit('add_project_member', 'project', project_id, before, core.member_json(project_id, user_id));
    RETURN core.member_json(project_id, user_id);
END
$$;
COMMENT ON FUNCTION api.add_project_member(bigint, bigint, text[], integer, text[]) IS
    'Project admin: lets a person of the project''s organization work in the project with these roles '
    '(annotator, reviewer, admin; default annotator), review level and expertise tags; on an existing member it '
    'replaces them.';

CREATE OR REPLACE FUNCTION api.set_project_roles(project_id bigint, user_id bigint, roles text[],
                                                 review_level integer DEFAULT NULL, expertise text[] DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint;
    before jsonb;
BEGIN
    PERFORM core.require_role('admin');
    me := core.require_project_role('admin', project_id);
    before := core.member_json(project_id, user_id);
    IF before IS NULL THEN
        RAISE EXCEPTION 'user % not found', user_id USING ERRCODE = 'P0002';
    END IF;
    PERFORM core.check_project_roles(roles);
    IF review_level IS NOT NULL AND review_level NOT IN (1, 2) THEN
        PERFORM core.invalid('review_level', 'must be 1 or 2');
    END IF;
    IF user_id = me AND NOT 'admin' = ANY (roles) AND NOT project_id = ANY (
            SELECT p.id FROM core.project p WHERE p.organization_id = ANY (auth.admin_orgs())) THEN
        PERFORM core.invalid('roles', 'you cannot remove your own admin role');
    END IF;
    UPDATE core.project_member m
       SET annotator = 'annotator' = ANY (roles), reviewer = 'reviewer' = ANY (roles), admin = 'admin' = ANY (roles),
           review_level = coalesce(set_project_roles.review_level, m.review_level),
           expertise = coalesce(set_project_roles.expertise, m.expertise)
     WHERE m.project_id = set_project_roles.project_id AND m.user_id = set_project_roles.user_id;
    PERFORM core.audit('set_project_roles', 'project', project_id, before, core.member_json(project_id, user_id));
    RETURN core.member_json(project_id, user_id);
END
$$;
COMMENT ON FUNCTION api.set_project_roles(bigint, bigint, text[], integer, text[]) IS
    'Project admin: replaces a member''s roles in the project (annotator, reviewer, admin); optionally their '
    'review level (1 or 2) and expertise tags there. Applies at the person''s next request.';

CREATE OR REPLACE FUNCTION api.remove_project_member(project_id bigint, user_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint;
    before jsonb;
BEGIN
    PERFORM core.require_role('admin');
    me := core.require_project_role('admin', project_id);
    before := core.member_json(project_id, user_id);
    IF before IS NULL THEN
        RAISE EXCEPTION 'user % not found', user_id USING ERRCODE = 'P0002';
    END IF;
    IF user_id = me THEN
        PERFORM core.invalid('user_id', 'you cannot remove yourself');
    END IF;
    DELETE FROM core.project_member m
     WHERE m.project_id = remove_project_member.project_id AND m.user_id = remove_project_member.user_id;
    PERFORM core.audit('remove_project_member', 'project', project_id, before, NULL);
    RETURN jsonb_build_object('project_id', project_id, 'user_id', user_id, 'removed', true);
END
$$;
COMMENT ON FUNCTION api.remove_project_member(bigint, bigint) IS
    'Project admin: the person no longer works in or sees the project (items they hold go back to the queue when '
    'their locks lapse; their past work stays).';

CREATE OR REPLACE FUNCTION core.add_image(p_project bigint, p_storage_key text, p_sha256 text, p_width integer,
                                          p_height integer, p_media_type text, p_source_class text,
                                          p_batch text, p_metadata jsonb, p_uploaded_by bigint,
                                          p_consent text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
-- The one way an image row is made (an admin's upload, a partner's case): checked, deduplicated by sha256 within the
-- project, audited; active matching rules then create its items by trigger.
DECLARE
    existing bigint;
    new_id bigint;
BEGIN
    IF p_media_type IS NULL OR p_media_type NOT IN ('image/jpeg', 'image/png', 'image/tiff', 'image/webp',
                                                    'application/dicom') THEN
        PERFORM core.invalid('media_type', 'must be image/jpeg, image/png, image/tiff, image/webp or application/dicom');
    END IF;
    IF p_metadata IS NOT NULL AND jsonb_typeof(p_metadata) <> 'object' THEN
        PERFORM core.invalid('metadata', 'must be a JSON object');
    END IF;
    p_consent := nullif(btrim(p_consent), '');
    IF p_consent IS NULL AND (SELECT p.consent_required FROM core.project p WHERE p.id = p_project) THEN
        PERFORM core.invalid('consent_ref', 'this project requires a consent reference for every image');
    END IF;
    IF length(p_consent) > 200 THEN
        PERFORM core.invalid('consent_ref', 'at most 200 characters');
    END IF;
    INSERT INTO core.image (project_id, storage_key, sha256, width, height, media_type, source_class,
                            upload_batch, metadata, uploaded_by, consent_ref)
    VALUES (p_project, p_storage_key, lower(p_sha256), p_width, p_height, p_media_type, p_source_class, p_batch,
            coalesce(p_metadata, '{}') - 'original_filename',  -- a file's name is often the patient's: never kept
            p_uploaded_by, p_consent)
    ON CONFLICT ON CONSTRAINT image_project_id_sha256_key DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN
        -- a re-upload of the same bytes: reported, not duplicated
        SELECT i.id INTO existing FROM core.image i WHERE i.project_id = p_project AND i.sha256 = lower(p_sha256);
        RETURN jsonb_build_object('id', existing, 'duplicate', true);
    END IF;
    PERFORM core.audit('register_image', 'image', new_id, NULL,
                       jsonb_build_object('project_id', p_project, 'sha256', lower(p_sha256),
                                          'source_class', p_source_class, 'upload_batch', p_batch));
    RETURN jsonb_build_object('id', new_id, 'duplicate', false,
                              'items_created', (SELECT count(*) FROM core.work_item w WHERE w.image_id = new_id));
END
$$;
COMMENT ON FUNCTION core.add_image(bigint, text, text, integer, integer, text, text, text, jsonb, bigint, text) IS
    'Records an image whose bytes are stored (checked - with its consent reference when the project requires one - '
    'deduplicated per project, audited); used by register_image and register_partner_image.';

CREATE OR REPLACE FUNCTION api.register_image(project_id bigint, storage_key text, sha256 text, width integer,
                                              height integer, media_type text, source_class text DEFAULT NULL,
                                              upload_batch text DEFAULT NULL, metadata jsonb DEFAULT '{}',
                                              consent_ref text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_role('admin');
BEGIN
    PERFORM core.require_project_role('admin', project_id);
    RETURN core.add_image(project_id, storage_key, sha256, width, height, media_type, source_class, upload_batch,
                          metadata, me, consent_ref);
END
$$;
COMMENT ON FUNCTION api.register_image(bigint, text, text, integer, integer, text, text, text, jsonb, text) IS
    'Admin: records an uploaded image (bytes already stored under storage_key), with its consent reference (required '
    'when the project says so). A second upload of the same sha256 in the project returns the existing id with '
    'duplicate=true. Active matching rules create items.';

CREATE OR REPLACE FUNCTION api.upload_target(project_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    IF auth.key_id() IS NOT NULL THEN
        PERFORM core.require_scope('images:write', project_id);
    ELSE
        PERFORM core.require_role('admin');
        PERFORM core.require_project_role('admin', project_id);
    END IF;
    RETURN jsonb_build_object('project_id', project_id, 'partner', auth.key_id() IS NOT NULL,
                              'consent_required', (SELECT p.consent_required FROM core.project p
                                                    WHERE p.id = upload_target.project_id));
END
$$;
COMMENT ON FUNCTION api.upload_target(bigint) IS
    'Admin of the project, or a partner key with images:write for it: answers when you may upload images into it '
    '(404 otherwise). The upload route asks it before reading any file, so a refused upload reads, writes and '
    'stores nothing.';

GRANT EXECUTE ON FUNCTION api.upload_target(bigint) TO dl_admin, dl_partner;
GRANT EXECUTE ON FUNCTION api.create_project(text, text, integer, integer, bigint),
                          api.add_project_member(bigint, bigint, text[], integer, text[]),
                          api.set_project_roles(bigint, bigint, text[], integer, text[]),
                          api.remove_project_member(bigint, bigint)
    TO dl_admin;
GRANT EXECUTE ON FUNCTION api.register_image(bigint, text, text, integer, integer, text, text, text, jsonb, text)
    TO dl_admin;

CREATE OR REPLACE FUNCTION api.set_skip_minutes(project_id bigint, minutes integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    before integer;
BEGIN
    PERFORM core.require_role('admin');
    PERFORM core.in_organization(core.require_project_role('admin', project_id));
    IF minutes IS NULL OR minutes NOT BETWEEN 0 AND 10080 THEN
        PERFORM core.invalid('minutes', 'must be between 0 and 10080 (a week)');
    END IF;
    SELECT p.skip_minutes INTO before FROM core.project p WHERE p.id = set_skip_minutes.project_id FOR UPDATE;
    UPDATE core.project p SET skip_minutes = minutes WHERE p.id = set_skip_minutes.project_id;
    PERFORM core.audit('set_skip_minutes', 'project', project_id, jsonb_build_object('skip_minutes', before),
                       jsonb_build_object('skip_minutes', minutes));
    RETURN jsonb_build_object('project_id', project_id, 'skip_minutes', minutes);
END
$$;
COMMENT ON FUNCTION api.set_skip_minutes(bigint, integer) IS
    'Project admin: how long an item an annotator skipped stays deferred for them (0 to 10080 minutes; 0: not at '
    'all). While deferred, next_item gives them anything else first; others may take it at once.';
GRANT EXECUTE ON FUNCTION api.set_skip_minutes(bigint, integer) TO dl_admin;
