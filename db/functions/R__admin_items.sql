-- Admin actions on single items and flags: priority, reassignment (vacation cover), cancellation, flag resolution.

CREATE OR REPLACE FUNCTION api.set_item_priority(item_id bigint, priority integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_role('admin');
    it core.work_item := core.lock_item_as(item_id, 'admin');
BEGIN
    IF priority IS NULL THEN
        PERFORM core.invalid('priority', 'is required');
    END IF;
    PERFORM core.begin_action('set_item_priority');
    UPDATE core.work_item w SET priority = set_item_priority.priority WHERE w.id = it.id;
    RETURN jsonb_build_object('id', it.id, 'priority', priority);
END
$$;
COMMENT ON FUNCTION api.set_item_priority(bigint, integer) IS
    'Admin: sets an item''s priority (higher is handed out first), e.g. to triage a red-flag case.';

CREATE OR REPLACE FUNCTION api.reassign_item(item_id bigint, user_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- Vacation cover: an item held or owed by one annotator goes to another, who finds it first in next_item.
-- The parameter is always qualified: project_member has a user_id column too.
DECLARE
    me bigint := core.require_role('admin');
    it core.work_item := core.lock_item_as(item_id, 'admin');
    minutes integer;
BEGIN
    IF it.status NOT IN ('in_progress', 'edits_requested') THEN
        RAISE EXCEPTION 'work item % is %, only in_progress or edits_requested items are reassigned', item_id,
                        it.status USING ERRCODE = 'PT409';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM auth."user" u JOIN core.project_member m ON m.user_id = u.id
                    WHERE u.id = reassign_item.user_id AND m.project_id = it.project_id AND u.active
                      AND m.annotator) THEN
        PERFORM core.invalid('user_id', 'must be an active annotator of the project');
    END IF;
    IF EXISTS (SELECT 1 FROM core.work_item o WHERE o.image_id = it.image_id AND o.annotator_id = reassign_item.user_id
                                                AND o.status <> 'cancelled' AND o.id <> it.id) THEN
        PERFORM core.invalid('user_id', 'already annotates this image in another item');
    END IF;
    SELECT p.lock_minutes INTO minutes FROM core.project p WHERE p.id = it.project_id;
    PERFORM core.begin_action('reassign_item');
    IF it.status = 'in_progress' THEN
        UPDATE core.work_item w SET annotator_id = reassign_item.user_id, assignee_id = reassign_item.user_id, locked_at = now(),
                                    lock_expires_at = now() + make_interval(mins => minutes)
         WHERE w.id = it.id;
    ELSE
        UPDATE core.work_item w SET annotator_id = reassign_item.user_id WHERE w.id = it.id;
    END IF;
    RETURN jsonb_build_object('id', it.id, 'status', it.status, 'annotator_id', reassign_item.user_id);
END
$$;
COMMENT ON FUNCTION api.reassign_item(bigint, bigint) IS
    'Admin: hands an in-progress or edits-requested item to another annotator of the project (vacation cover); '
    'the draft of the previous annotator stays readable to admins.';

CREATE OR REPLACE FUNCTION api.reassign_user_items(project_id bigint, from_user bigint, to_user bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- Vacation cover for everything at once: each item goes through api.reassign_item (its checks, its audit);
-- an item whose image the new annotator already annotates stays where it is and is reported.
DECLARE
    item bigint;
    moved bigint[] := '{}';
    kept jsonb := '[]';
    why text;
BEGIN
    PERFORM core.require_role('admin');
    PERFORM core.require_project_role('admin', project_id);
    IF from_user IS NOT DISTINCT FROM to_user THEN
        PERFORM core.invalid('to_user', 'must be someone else');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM auth."user" u JOIN core.project_member m ON m.user_id = u.id
                    WHERE u.id = to_user AND m.project_id = reassign_user_items.project_id AND u.active
                      AND m.annotator) THEN
        PERFORM core.invalid('to_user', 'must be an active annotator of the project');
    END IF;
    FOR item IN SELECT w.id FROM core.work_item w
                 WHERE w.project_id = reassign_user_items.project_id AND w.annotator_id = from_user
                   AND w.status IN ('in_progress', 'edits_requested')
                 ORDER BY w.id LOOP
        BEGIN
            PERFORM api.reassign_item(item, to_user);
            moved := moved || item;
        EXCEPTION WHEN invalid_parameter_value THEN  -- the new annotator already annotates this image
            GET STACKED DIAGNOSTICS why = MESSAGE_TEXT;
            kept := kept || jsonb_build_object('item_id', item, 'reason', why);
        END;
    END LOOP;
    RETURN jsonb_build_object('moved', to_jsonb(moved), 'kept', kept);
END
$$;
COMMENT ON FUNCTION api.reassign_user_items(bigint, bigint, bigint) IS
    'Admin: hands every in-progress and edits-requested item of one annotator in the project to another (vacation '
    'cover), each as reassign_item does; returns the items moved and those kept (the other already annotates '
    'that image).';

CREATE OR REPLACE FUNCTION api.cancel_item(item_id bigint, comment text DEFAULT '')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_role('admin');
    it core.work_item := core.lock_item_as(item_id, 'admin');
BEGIN
    IF it.status IN ('done', 'cancelled') THEN
        RAISE EXCEPTION 'work item % is already %', item_id, it.status USING ERRCODE = 'PT409';
    END IF;
    PERFORM core.begin_action('cancel_item');
    UPDATE core.work_item w SET status = 'cancelled', assignee_id = NULL, locked_at = NULL, lock_expires_at = NULL
     WHERE w.id = it.id;
    PERFORM core.audit('cancel_item', 'work_item', it.id, NULL, jsonb_build_object('comment', comment));
    RETURN jsonb_build_object('id', it.id, 'status', 'cancelled');
END
$$;
COMMENT ON FUNCTION api.cancel_item(bigint, text) IS
    'Admin: cancels an item that is not finished (done and cancelled items cannot be cancelled: 409).';

CREATE OR REPLACE FUNCTION api.resolve_flag(flag_id bigint, resolution text, comment text DEFAULT '')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_role('admin');
    f core.work_item_flag;
    it core.work_item;
    closed integer := 0;
BEGIN
    SELECT * INTO f FROM core.work_item_flag x WHERE x.id = flag_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'flag % not found', flag_id USING ERRCODE = 'P0002';
    END IF;
    BEGIN
        it := core.lock_item_as(f.item_id, 'admin');
    EXCEPTION WHEN no_data_found THEN  -- another project's flag: exactly like a missing one
        RAISE EXCEPTION 'flag % not found', flag_id USING ERRCODE = 'P0002';
    END;
    IF f.resolved_at IS NOT NULL THEN
        RAISE EXCEPTION 'flag % was already resolved (%)', flag_id, f.resolution USING ERRCODE = 'PT409';
    END IF;
    IF resolution IS NULL OR resolution NOT IN ('restore', 'remove_image') THEN
        PERFORM core.invalid('resolution', 'must be restore or remove_image');
    END IF;
    PERFORM core.begin_action('resolve_flag');
    IF resolution = 'restore' THEN
        UPDATE core.work_item w SET status = 'new', annotator_id = NULL WHERE w.id = it.id;
        UPDATE core.image i SET status = 'active' WHERE i.id = f.image_id AND i.status = 'flagged'
           AND NOT EXISTS (SELECT 1 FROM core.work_item_flag o WHERE o.image_id = f.image_id
                                                                AND o.resolved_at IS NULL AND o.id <> f.id);
    ELSE
        UPDATE core.image i SET status = 'removed' WHERE i.id = f.image_id;
        PERFORM core.purge_image_objects(f.image_id, 'image_removed');  -- its bytes go too (the worker deletes)
        -- lock the image's other unfinished items before closing them, in id order (no deadlock between admins)
        PERFORM 1 FROM core.work_item w WHERE w.image_id = f.image_id
                                          AND w.status NOT IN ('done', 'cancelled') ORDER BY w.id FOR UPDATE;
        UPDATE core.work_item w SET status = 'cancelled', assignee_id = NULL, locked_at = NULL,
                                    lock_expires_at = NULL
         WHERE w.image_id = f.image_id AND w.status NOT IN ('done', 'cancelled');
        GET DIAGNOSTICS closed = ROW_COUNT;
        UPDATE core.work_item_flag x SET resolved_at = now(), resolved_by = me, resolution = 'image_removed',
                                         resolution_comment = resolve_flag.comment
         WHERE x.image_id = f.image_id AND x.resolved_at IS NULL AND x.id <> f.id;
    END IF;
    UPDATE core.work_item_flag x
       SET resolved_at = now(), resolved_by = me,
           resolution = CASE WHEN resolve_flag.resolution = 'restore' THEN 'restored' ELSE 'image_removed' END,
           resolution_comment = resolve_flag.comment
     WHERE x.id = f.id;
    PERFORM core.audit('resolve_flag', 'work_item_flag', f.id, NULL,
                       jsonb_build_object('resolution', resolution, 'comment', comment, 'items_closed', closed));
    RETURN jsonb_build_object('flag_id', f.id, 'resolution', resolution, 'items_closed', closed);
END
$$;
COMMENT ON FUNCTION api.resolve_flag(bigint, text, text) IS
    'Admin: resolves a rejected-image flag: restore puts the item back to new for anyone; remove_image takes the '
    'image out of the dataset and cancels all its unfinished items.';

CREATE OR REPLACE FUNCTION api.open_flags(project_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = '' AS $$
BEGIN
    PERFORM core.require_role('admin');
    PERFORM core.require_project_role('admin', project_id);
    RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object('id', f.id, 'item_id', f.item_id, 'image_id', f.image_id,
                                      'reason', f.reason, 'comment', f.comment, 'raised_by', f.raised_by,
                                      'created_at', f.created_at) ORDER BY f.id), '[]')
              FROM core.work_item_flag f JOIN core.work_item w ON w.id = f.item_id
             WHERE w.project_id = open_flags.project_id AND f.resolved_at IS NULL);
END
$$;
COMMENT ON FUNCTION api.open_flags(bigint) IS 'Admin: the project''s unresolved rejected-image flags, oldest first.';

GRANT EXECUTE ON FUNCTION api.set_item_priority(bigint, integer), api.reassign_item(bigint, bigint),
                          api.reassign_user_items(bigint, bigint, bigint),
                          api.cancel_item(bigint, text), api.resolve_flag(bigint, text, text),
                          api.open_flags(bigint)
    TO dl_admin;
