-- Erasure: an image everywhere, a person's identity; and the purge of stored bytes the worker carries out.
-- What history needs stays as a tombstone without content: the items (done ones keep their place in the metrics),
-- the revisions and reviews (content and comments replaced), the audit trail (values replaced), the access audit.

CREATE OR REPLACE FUNCTION core.purge_image_objects(p_image bigint, p_reason text) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- Every stored object of the image: the original, the thumbnail, the DICOM file, each AI crop and embedding.
DECLARE
    i core.image;
    n integer;
BEGIN
    SELECT * INTO i FROM core.image x WHERE x.id = p_image;
    INSERT INTO core.storage_purge (storage_key, image_id, reason)
    SELECT DISTINCT k, i.id, p_reason FROM (
        SELECT i.storage_key AS k
        UNION ALL SELECT 'thumbs/' || i.project_id || '/' || i.sha256 || '.jpg'
        UNION ALL SELECT 'dicom/' || i.project_id || '/' || i.sha256 || '.dcm' WHERE i.media_type = 'application/dicom'
                                                                                 OR i.metadata ? 'dicom'
        UNION ALL SELECT s.payload -> 'standardised' ->> 'storage_key' FROM core.ai_suggestion s
                   WHERE s.image_id = i.id AND s.payload -> 'standardised' ? 'storage_key'
        -- the segment stage's embedding holds a working copy of the image
        UNION ALL SELECT s.payload -> 'embedding' ->> 'storage_key' FROM core.ai_suggestion s
                   WHERE s.image_id = i.id AND s.stage = 'segment' AND s.payload -> 'embedding' ? 'storage_key') keys
     WHERE k IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM pg_notify('dl_purge', '');
    RETURN n;
END
$$;
COMMENT ON FUNCTION core.purge_image_objects(bigint, text) IS
    'Queues every stored object of an image (original, thumbnail, DICOM file, AI crops and segment embeddings) for '
    'deletion by the worker.';

CREATE OR REPLACE FUNCTION core.erase_image(p_image bigint, p_reason text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- The image's bytes, metadata, drafts, suggestions, the partner's case and the words written about it go; its
-- items stay as tombstones (open ones cancelled), so queues, metrics and exports stay consistent (exports leave
-- removed images out).
DECLARE
    i core.image;
    cancelled integer;
    objects integer;
BEGIN
    SELECT * INTO i FROM core.image x WHERE x.id = p_image FOR UPDATE;
    PERFORM core.begin_action('erase_image');
    PERFORM set_config('dl.erasing', 'on', true);
    objects := core.purge_image_objects(i.id, p_reason);
    PERFORM 1 FROM core.work_item w WHERE w.image_id = i.id AND w.status NOT IN ('done', 'cancelled')
     ORDER BY w.id FOR UPDATE;
    UPDATE core.work_item w SET status = 'cancelled', assignee_id = NULL, locked_at = NULL, lock_expires_at = NULL
     WHERE w.image_id = i.id AND w.status NOT IN ('done', 'cancelled');
    GET DIAGNOSTICS cancelled = ROW_COUNT;
    DELETE FROM core.annotation_draft d USING core.work_item w WHERE w.id = d.item_id AND w.image_id = i.id;
    UPDATE core.annotation_revision r SET content = jsonb_build_object('class', r.content -> 'class', 'erased', true)
      FROM core.work_item w WHERE w.id = r.item_id AND w.image_id = i.id;
    UPDATE core.review v SET comment = '' FROM core.work_item w WHERE w.id = v.item_id AND w.image_id = i.id;
    UPDATE core.review_hint h SET message = '', detail = '{}' FROM core.work_item w
     WHERE w.id = h.item_id AND w.image_id = i.id;
    UPDATE core.work_item_flag f SET comment = '', resolution_comment = NULL WHERE f.image_id = i.id;
    DELETE FROM core.ai_suggestion s WHERE s.image_id = i.id;
    -- the attempts first: they reference their job (an image a worker ever took a job of could not be erased)
    DELETE FROM core.ai_attempt a USING core.ai_job j WHERE j.id = a.job_id AND j.image_id = i.id;
    DELETE FROM core.ai_job j WHERE j.image_id = i.id;
    DELETE FROM core.gold_standard g WHERE g.image_id = i.id;
    DELETE FROM core.partner_case c WHERE c.image_id = i.id;
    UPDATE audit.event e SET before = NULL, after = jsonb_build_object('erased', true)
     WHERE e.entity = 'image' AND e.entity_id = i.id;
    -- the row stays (ids of items and audit rows point to it) without anything that could find the original:
    -- not its hash, not its metadata, not its batch
    UPDATE core.image x SET status = 'removed', erased_at = now(), metadata = '{}', source_class = NULL,
           upload_batch = NULL, consent_ref = NULL, sha256 = encode(public.digest('erased:' || x.id, 'sha256'), 'hex'),
           storage_key = 'erased/' || x.id
     WHERE x.id = i.id;
    PERFORM set_config('dl.erasing', 'off', true);
    RETURN jsonb_build_object('image_id', i.id, 'items_cancelled', cancelled, 'objects_queued', objects);
END
$$;
COMMENT ON FUNCTION core.erase_image(bigint, text) IS
    'Erases an image everywhere (see the file''s header); the stored objects are queued for the worker to delete.';

CREATE OR REPLACE FUNCTION api.erase_image(image_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    pid bigint;
    out jsonb;
BEGIN
    PERFORM core.require_role('admin');
    SELECT i.project_id INTO pid FROM core.image i WHERE i.id = erase_image.image_id AND i.erased_at IS NULL;
    IF pid IS NULL OR NOT pid IN (SELECT p.id FROM core.project p WHERE p.organization_id = ANY (auth.admin_orgs())) THEN
        RAISE EXCEPTION 'image % not found', image_id USING ERRCODE = 'P0002';
    END IF;
    PERFORM core.in_organization((SELECT p.organization_id FROM core.project p WHERE p.id = pid));
    out := core.erase_image(image_id, 'image_erased');
    PERFORM core.audit('erase_image', 'image', image_id, NULL, out);
    RETURN out;
END
$$;
COMMENT ON FUNCTION api.erase_image(bigint) IS
    'Organization admin: erases an image everywhere - stored bytes (original, thumbnail, DICOM file, AI crops; the '
    'worker deletes them), metadata and hash, drafts, AI suggestions, the partner''s case, what annotations, '
    'reviews and flags say; its items remain as tombstones (open ones cancelled), so metrics and exports stay '
    'consistent. Cannot be undone.';

CREATE OR REPLACE FUNCTION api.erase_person(user_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- The account becomes a pseudonym: its annotations and reviews stay attributed to the same id (quality history
-- survives), nothing says who it was.
DECLARE
    who bigint;
    ended integer;
BEGIN
    PERFORM core.require_role('admin');
    who := core.managed_user(user_id);
    IF who = auth.uid() THEN
        PERFORM core.invalid('user_id', 'you cannot erase yourself');
    END IF;
    PERFORM set_config('dl.erasing', 'on', true);
    ended := core.revoke_sessions(who, 'erased');
    UPDATE auth.api_key k SET revoked_at = coalesce(k.revoked_at, now()) WHERE k.created_by = who;
    UPDATE auth."user" u SET email = 'erased-' || u.id || '@erased.invalid', display_name = 'Erased person ' || u.id,
           password_hash = NULL, active = false, operator = false, on_vacation = false, failed_logins = 0,
           locked_until = NULL
     WHERE u.id = who;
    DELETE FROM core.description_template t WHERE t.owner_id = who;
    DELETE FROM core.annotation_draft d WHERE d.author_id = who;
    DELETE FROM auth.db_login l WHERE l.user_id = who;
    DELETE FROM core.project_member m WHERE m.user_id = who;
    DELETE FROM core.org_member o WHERE o.user_id = who;
    UPDATE audit.event e SET before = NULL, after = jsonb_build_object('erased', true)
     WHERE e.entity = 'user' AND e.entity_id = who;
    PERFORM set_config('dl.erasing', 'off', true);
    PERFORM core.audit('erase_person', 'user', who, NULL, jsonb_build_object('sessions_ended', ended));
    RETURN jsonb_build_object('user_id', who, 'erased', true, 'sessions_ended', ended);
END
$$;
COMMENT ON FUNCTION api.erase_person(bigint) IS
    'Organization admin (of the person''s only organization) or operator: erases a person - email and name '
    'replaced by a pseudonym, password, sessions, keys they made, templates, drafts and memberships gone, what '
    'the audit trail said of the account replaced; their annotations and reviews stay under the same id so quality '
    'history survives. Cannot be undone.';

-- The worker's side (role dl_ai_worker): claim due purges under a lease, report each.
CREATE OR REPLACE FUNCTION ops.claim_purges(p_limit integer, p_lease_seconds integer) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    out jsonb;
BEGIN
    WITH due AS (
        SELECT p.id FROM core.storage_purge p
         WHERE p.done_at IS NULL AND p.next_attempt_at <= now() AND (p.lease_until IS NULL OR p.lease_until < now())
         ORDER BY p.next_attempt_at, p.id LIMIT p_limit FOR UPDATE SKIP LOCKED),
    taken AS (
        UPDATE core.storage_purge p SET attempts = p.attempts + 1,
               lease_until = now() + make_interval(secs => p_lease_seconds)
          FROM due WHERE p.id = due.id RETURNING p.id, p.storage_key)
    SELECT coalesce(jsonb_agg(jsonb_build_object('id', t.id, 'key', t.storage_key) ORDER BY t.id), '[]')
      INTO out FROM taken t;
    RETURN out;
END
$$;
COMMENT ON FUNCTION ops.claim_purges(integer, integer) IS 'Worker: up to p_limit stored objects to delete, leased.';

CREATE OR REPLACE FUNCTION ops.report_purge(p_purge bigint, p_error text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    UPDATE core.storage_purge p
       SET done_at = CASE WHEN p_error IS NULL THEN now() END, lease_until = NULL, last_error = left(p_error, 500),
           next_attempt_at = CASE WHEN p_error IS NULL THEN p.next_attempt_at
                                  ELSE now() + least(interval '1 hour', interval '10 seconds' * power(2, p.attempts)) END
     WHERE p.id = p_purge;
END
$$;
COMMENT ON FUNCTION ops.report_purge(bigint, text) IS
    'Worker: an object deleted (p_error NULL) or not (retried later with backoff).';

GRANT EXECUTE ON FUNCTION ops.claim_purges(integer, integer), ops.report_purge(bigint, text) TO dl_ai_worker;
GRANT EXECUTE ON FUNCTION api.erase_image(bigint), api.erase_person(bigint) TO dl_admin;

-- Retention: images whose work is over for longer than their project keeps them are erased, a batch at a time,
-- each erasure audited. Called by the app's scheduler (as its login role) beside the metrics refresh.
CREATE OR REPLACE FUNCTION ops.apply_retention(p_batch integer DEFAULT 500) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    img record;
    n integer := 0;
BEGIN
    FOR img IN
        SELECT i.id, p.organization_id FROM core.image i JOIN core.project p ON p.id = i.project_id
         WHERE p.retention_days IS NOT NULL AND i.erased_at IS NULL
           AND EXISTS (SELECT 1 FROM core.work_item w WHERE w.image_id = i.id)
           AND NOT EXISTS (SELECT 1 FROM core.work_item w WHERE w.image_id = i.id
                            AND (w.status NOT IN ('done', 'rejected', 'cancelled')
                                 OR w.updated_at > now() - make_interval(days => p.retention_days)))
         ORDER BY i.id LIMIT p_batch FOR UPDATE OF i SKIP LOCKED
    LOOP
        PERFORM core.in_organization(img.organization_id);
        PERFORM core.audit('retention_erase', 'image', img.id, NULL, core.erase_image(img.id, 'retention'), NULL);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION ops.apply_retention(integer) IS
    'Erases (core.erase_image) up to p_batch images whose project''s retention_days have passed since their last '
    'item finished; each erasure audited as retention_erase. Returns how many.';
GRANT EXECUTE ON FUNCTION ops.apply_retention(integer) TO dl_authenticator;

CREATE OR REPLACE FUNCTION api.set_retention(project_id bigint, retention_days integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    PERFORM core.require_role('admin');
    PERFORM core.require_project_role('admin', project_id);
    IF retention_days IS NOT NULL AND retention_days NOT BETWEEN 1 AND 36500 THEN
        PERFORM core.invalid('retention_days', 'must be between 1 and 36500 (or null: keep images)');
    END IF;
    UPDATE core.project p SET retention_days = set_retention.retention_days WHERE p.id = project_id;
    PERFORM core.audit('set_retention', 'project', project_id, NULL,
                       jsonb_build_object('retention_days', retention_days));
    RETURN jsonb_build_object('project_id', project_id, 'retention_days', retention_days);
END
$$;
COMMENT ON FUNCTION api.set_retention(bigint, integer) IS
    'Project admin: erase the project''s images this many days after all their items are finished (null: keep '
    'them). The scheduler applies it; each erasure is audited.';
GRANT EXECUTE ON FUNCTION api.set_retention(bigint, integer) TO dl_admin;
