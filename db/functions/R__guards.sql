-- Guards every api function starts with: who is calling, may they, and does the thing exist for them.

-- Bad input: 22023, the message starts with the field, and the field is in the error's COLUMN slot.
CREATE OR REPLACE FUNCTION core.invalid(p_field text, p_problem text) RETURNS void
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    RAISE EXCEPTION '%: %', p_field, p_problem USING ERRCODE = '22023', COLUMN = p_field;
END
$$;

CREATE OR REPLACE FUNCTION core.require_signed_in() RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
DECLARE
    me bigint := auth.uid();
BEGIN
    IF me IS NULL THEN
        RAISE EXCEPTION 'sign in first' USING ERRCODE = '42501';  -- 401 for an anonymous caller
    END IF;
    RETURN me;
END
$$;
COMMENT ON FUNCTION core.require_signed_in() IS 'The caller''s id, or 42501 when nobody is signed in.';

CREATE OR REPLACE FUNCTION core.require_role(p_role auth.app_role) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
DECLARE
    me bigint := core.require_signed_in();
BEGIN
    IF NOT auth.has_role(p_role) THEN
        RAISE EXCEPTION 'permission denied: this needs the % role', p_role USING ERRCODE = '42501';
    END IF;
    RETURN me;
END
$$;
COMMENT ON FUNCTION core.require_role(auth.app_role) IS 'The caller''s id, or 42501 unless they hold the role.';

CREATE OR REPLACE FUNCTION core.caller(p_role auth.app_role, p_project bigint) RETURNS auth."user"
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
-- The hot-path guard: one query for "signed in, active, holds the role, member of the project".
DECLARE
    u auth."user";
    member boolean;
BEGIN
    SELECT x.*, EXISTS (SELECT 1 FROM core.project_member m WHERE m.project_id = p_project AND m.user_id = x.id)
      INTO u.id, u.email, u.display_name, u.password_hash, u.roles, u.expertise, u.review_level, u.active,
           u.on_vacation, u.failed_logins, u.locked_until, u.password_changed_at, u.created_at, member
      FROM auth."user" x WHERE x.id = core.require_signed_in();
    IF u.id IS NULL THEN  -- signed in, but the account is gone
        RAISE EXCEPTION 'permission denied: unknown user' USING ERRCODE = '42501';
    END IF;
    IF NOT u.active OR NOT p_role = ANY (u.roles) THEN
        RAISE EXCEPTION 'permission denied: this needs the % role', p_role USING ERRCODE = '42501';
    END IF;
    IF NOT member THEN
        RAISE EXCEPTION 'project % not found', p_project USING ERRCODE = 'P0002';
    END IF;
    RETURN u;
END
$$;

CREATE OR REPLACE FUNCTION core.require_member(p_project bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
BEGIN
    -- A project the caller does not belong to answers exactly like one that does not exist.
    IF p_project IS NULL OR NOT auth.is_member(p_project) THEN
        RAISE EXCEPTION 'project % not found', p_project USING ERRCODE = 'P0002';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION core.item_not_found(p_item bigint) RETURNS void
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    RAISE EXCEPTION 'work item % not found', p_item USING ERRCODE = 'P0002';
END
$$;

CREATE OR REPLACE FUNCTION core.lost_lock(p_item bigint) RETURNS void
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    RAISE EXCEPTION 'you no longer hold work item %', p_item USING ERRCODE = 'PT409',
        DETAIL = 'The lock expired or the item moved on.',
        HINT = 'Call next_item: your own expired item is handed back to you if nobody took it.';
END
$$;

CREATE OR REPLACE FUNCTION core.lock_item(p_item bigint) RETURNS core.work_item
LANGUAGE plpgsql SET search_path = '' AS $$
-- Every action on one item starts here: the row lock first, then decisions. An item the caller may not see
-- (auth.sees_item, the same rule as the row-level security policy) does not exist for them: 404, never a 409
-- that would confirm another annotator's item is there. Items they may see but not act on answer 409 later.
DECLARE
    it core.work_item;
BEGIN
    SELECT * INTO it FROM core.work_item w WHERE w.id = p_item FOR UPDATE;
    IF NOT FOUND OR NOT auth.sees_item(it.annotator_id, it.assignee_id, it.project_id, it.status, it.id) THEN
        PERFORM core.item_not_found(p_item);
    END IF;
    RETURN it;
END
$$;

CREATE OR REPLACE FUNCTION core.lock_held_item(p_item bigint, p_me bigint) RETURNS core.work_item
LANGUAGE plpgsql SET search_path = '' AS $$
-- The caller must hold the item: in_progress, theirs, lock not expired.
DECLARE
    it core.work_item := core.lock_item(p_item);
BEGIN
    IF it.status <> 'in_progress' OR it.assignee_id IS DISTINCT FROM p_me OR it.lock_expires_at <= now() THEN
        PERFORM core.lost_lock(p_item);
    END IF;
    RETURN it;
END
$$;

CREATE OR REPLACE FUNCTION core.extend_lock(p_item core.work_item) RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
DECLARE
    expires timestamptz;
BEGIN
    UPDATE core.work_item w
       SET lock_expires_at = now() + make_interval(mins => (SELECT p.lock_minutes FROM core.project p
                                                              WHERE p.id = p_item.project_id))
     WHERE w.id = p_item.id
    RETURNING w.lock_expires_at INTO expires;
    RETURN expires;
END
$$;
