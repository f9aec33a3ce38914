-- The annotator's cycle: next_item, heartbeat, save_draft, submit_annotation, reject_image, release_item,
-- plus what they read: item_detail and my_queue.

CREATE OR REPLACE FUNCTION core.read_of(p_item bigint, p_image bigint, p_rule bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- Definer: counts the image's reads the caller may not see (the other read of a double read) without showing them.
BEGIN
    RETURN (SELECT jsonb_build_object('n', count(*) FILTER (WHERE o.id <= p_item), 'of', count(*))
              FROM core.work_item o WHERE o.image_id = p_image AND o.rule_id IS NOT DISTINCT FROM p_rule
                                      AND o.status <> 'cancelled');
END
$$;
COMMENT ON FUNCTION core.read_of(bigint, bigint, bigint) IS
    'Which read of its image an item is, as {n, of} (2 of 2 in a double read), counting reads the caller cannot see.';
GRANT EXECUTE ON FUNCTION core.read_of(bigint, bigint, bigint) TO dl_annotator, dl_reviewer, dl_admin;

CREATE OR REPLACE FUNCTION core.item_document(p_item bigint, p_full boolean) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = '' SET plan_cache_mode = force_generic_plan AS $$
-- What a workspace needs to show an item. Run as the caller from item_detail (so RLS applies), and from the
-- definer functions that have just locked the item for the caller. PL/pgSQL so the plan is kept between calls,
-- and that plan generic: every lookup is by primary key or item id, so a custom plan per call only costs the
-- planning (0.44 of 0.59 ms a call when PostgreSQL kept choosing custom plans).
BEGIN
    RETURN (SELECT jsonb_build_object(
        'id', w.id, 'project_id', w.project_id, 'status', w.status, 'priority', w.priority,
        'review_stage', w.review_stage, 'revision_seq', w.last_revision_seq,
        -- back with its annotator after a reviewer asked for changes (an item with revisions returns no other way)
        'sent_back', w.last_revision_seq > 0 AND w.status IN ('in_progress', 'edits_requested'),
        'annotator_id', w.annotator_id, 'assignee_id', w.assignee_id,
        -- which read of a double-read image this is (1 of 2): reviewers see which read they review, not the other
        'read', core.read_of(w.id, w.image_id, w.rule_id),
        'locked_at', w.locked_at, 'lock_expires_at', w.lock_expires_at, 'created_at', w.created_at,
        'image', jsonb_build_object('id', i.id, 'url', '/images/' || i.id, 'thumb_url', '/images/' || i.id || '/thumb',
                                    'width', i.width, 'height', i.height, 'media_type', i.media_type,
                                    'source_class', i.source_class, 'metadata', i.metadata),
        'draft', (SELECT d.content FROM core.annotation_draft d WHERE d.item_id = w.id AND d.author_id = auth.uid()),
        'latest_revision', (SELECT jsonb_build_object('revision_seq', r.revision_seq, 'content', r.content,
                                                      'author_id', r.author_id, 'created_at', r.created_at)
                              FROM core.annotation_revision r WHERE r.item_id = w.id
                             ORDER BY r.revision_seq DESC LIMIT 1),
        'last_review', (SELECT jsonb_build_object('decision', v.decision, 'comment', v.comment, 'stage', v.stage,
                                                  'reviewer_id', v.reviewer_id, 'created_at', v.created_at)
                          FROM core.review v WHERE v.item_id = w.id ORDER BY v.id DESC LIMIT 1),
        -- computed ahead by the AI pipeline; nothing here waits for a model
        'ai', core.ai_document(i.id)
    ) || CASE WHEN p_full THEN jsonb_build_object(
        'revisions', (SELECT coalesce(jsonb_agg(jsonb_build_object('revision_seq', r.revision_seq,
                                                'content', r.content, 'author_id', r.author_id,
                                                'created_at', r.created_at) ORDER BY r.revision_seq), '[]')
                        FROM core.annotation_revision r WHERE r.item_id = w.id),
        'reviews', (SELECT coalesce(jsonb_agg(jsonb_build_object('revision_seq', r.revision_seq, 'stage', v.stage,
                                              'decision', v.decision, 'comment', v.comment,
                                              'reviewer_id', v.reviewer_id, 'created_at', v.created_at)
                                    ORDER BY v.id), '[]')
                      FROM core.review v JOIN core.annotation_revision r ON r.id = v.revision_id
                     WHERE v.item_id = w.id),
        'flags', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', f.id, 'reason', f.reason, 'comment', f.comment,
                                            'raised_by', f.raised_by, 'created_at', f.created_at,
                                            'resolution', f.resolution) ORDER BY f.id), '[]')
                    FROM core.work_item_flag f WHERE f.item_id = w.id),
        -- for reviewers and admins (the policy shows annotators none; definer callers are reviewer functions)
        'hints', (SELECT coalesce(jsonb_agg(jsonb_build_object('kind', h.kind, 'message', h.message,
                                            'detail', h.detail, 'revision_id', h.revision_id,
                                            'created_at', h.created_at) ORDER BY h.id), '[]')
                    FROM core.review_hint h WHERE h.item_id = w.id))
        ELSE '{}'::jsonb END
      FROM core.work_item w JOIN core.image i ON i.id = w.image_id
     WHERE w.id = p_item);
END
$$;
COMMENT ON FUNCTION core.item_document(bigint, boolean) IS
    'What a workspace shows of a work item: status, lock, image, the caller''s draft, the latest revision and '
    'review, the AI suggestions (core.ai_document); with p_full the revisions, reviews, flags and hints too. Run as '
    'the caller it meets row-level security; read through core.item_read, which records the read.';

CREATE OR REPLACE FUNCTION core.claim(p_item bigint, p_me bigint, p_minutes integer) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
BEGIN
    UPDATE core.work_item w
       SET status = 'in_progress', annotator_id = p_me, assignee_id = p_me,
           locked_at = now(), lock_expires_at = now() + make_interval(mins => p_minutes)
     WHERE w.id = p_item;
END
$$;

CREATE OR REPLACE FUNCTION api.next_item(project_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- Order: my edits_requested items, my own in_progress item (resume, even if its lock lapsed), an expired item
-- of someone else, then new items by priority, the AI's uncertainty (active-learning rules only), age, id. Every pick is FOR UPDATE SKIP LOCKED, so two callers never
-- get the same row; the unique (image, annotator) index makes double annotation impossible even in a race.
DECLARE
    u core.actor := core.caller('annotator', project_id);
    me bigint := u.id;
    minutes integer;
    picked bigint;
    upcoming bigint;  -- the image of the item likely to come next (for prefetching), on the new-item path
    cand record;
    attempts integer := 0;
    skipped_after timestamptz;  -- items I skipped since then are passed over while anything else is left
BEGIN
    IF u.on_vacation THEN
        RETURN jsonb_build_object('item', NULL, 'reason', 'on_vacation');
    END IF;
    SELECT p.lock_minutes, CASE WHEN p.skip_minutes > 0 THEN now() - make_interval(mins => p.skip_minutes) END
      INTO minutes, skipped_after
      FROM core.project p WHERE p.id = next_item.project_id;
    PERFORM core.begin_action('next_item');

    SELECT w.id INTO picked FROM core.work_item w
     WHERE w.annotator_id = me AND w.project_id = next_item.project_id
       AND w.status IN ('edits_requested', 'in_progress')
       AND (w.status = 'edits_requested' OR w.assignee_id = me)
     ORDER BY (w.status = 'edits_requested') DESC, w.priority DESC, w.updated_at, w.id
     LIMIT 1 FOR UPDATE SKIP LOCKED;

    IF picked IS NULL THEN
        picked := core.gold_check_for(u, project_id);  -- at the rule's gold_rate, a gold check instead
    END IF;

    <<hunt>>
    LOOP
        EXIT hunt WHEN picked IS NOT NULL OR attempts >= 20;
        attempts := attempts + 1;
        -- someone else's item whose lock lapsed (lazy expiry), else the best new one
        SELECT w.id INTO picked FROM core.work_item w JOIN core.work_rule r ON r.id = w.rule_id
         WHERE w.project_id = next_item.project_id AND w.status = 'in_progress' AND w.lock_expires_at < now()
           AND r.active AND (r.pool_user_ids IS NULL OR me = ANY (r.pool_user_ids))
           AND (r.expertise IS NULL OR r.expertise = ANY (u.expertise))
           AND NOT EXISTS (SELECT 1 FROM core.work_item o WHERE o.image_id = w.image_id AND o.annotator_id = me
                                                           AND o.status <> 'cancelled')
         ORDER BY w.priority DESC, w.lock_expires_at, w.id
         LIMIT 1 FOR UPDATE OF w SKIP LOCKED;
        IF picked IS NULL THEN
            -- the best two, in order: the first is claimed, the second's image is what the workspace prefetches
            upcoming := NULL;
            FOR cand IN
                SELECT w.id, w.image_id FROM core.work_item w JOIN core.work_rule r ON r.id = w.rule_id
                 WHERE w.project_id = next_item.project_id AND w.status = 'new'
                   AND r.active AND (r.pool_user_ids IS NULL OR me = ANY (r.pool_user_ids))
                   AND (r.expertise IS NULL OR r.expertise = ANY (u.expertise))
                   -- OFFSET 0 keeps this a probe of the (image, annotator) index per candidate: as an anti-join the
                   -- planner could load all of the annotator's past items first (3.7 ms of a 4.4 ms cycle with
                   -- the statistics a bulk load leaves)
                   AND NOT EXISTS (SELECT 1 FROM core.work_item o WHERE o.image_id = w.image_id
                                                                   AND o.annotator_id = me AND o.status <> 'cancelled'
                                    OFFSET 0)
                   AND (skipped_after IS NULL
                        OR NOT EXISTS (SELECT 1 FROM core.item_skip s WHERE s.item_id = w.id AND s.user_id = me
                                                                      AND s.skipped_at > skipped_after OFFSET 0))
                 ORDER BY w.priority DESC, w.ai_uncertainty DESC NULLS LAST, w.created_at, w.id
                 LIMIT 2 FOR UPDATE OF w SKIP LOCKED
            LOOP
                IF picked IS NULL THEN
                    picked := cand.id;
                ELSE
                    upcoming := cand.image_id;
                END IF;
            END LOOP;
        END IF;
        IF picked IS NULL AND skipped_after IS NOT NULL THEN
            skipped_after := NULL;  -- nothing else is left: what I skipped comes back
            CONTINUE hunt;
        END IF;
        EXIT hunt WHEN picked IS NULL;
        BEGIN
            PERFORM core.claim(picked, me, minutes);
            RETURN jsonb_build_object('item', core.item_read(picked, false),
                                      'upcoming_image', CASE WHEN upcoming IS NOT NULL
                                                             THEN '/images/' || upcoming END);
        EXCEPTION WHEN unique_violation THEN
            -- a concurrent call of mine claimed another item of this image first: look further
            picked := NULL;
        END;
    END LOOP;

    IF picked IS NULL THEN
        RETURN jsonb_build_object('item', NULL, 'reason', 'queue_empty');
    END IF;
    PERFORM core.claim(picked, me, minutes);
    RETURN jsonb_build_object('item', core.item_read(picked, false));
END
$$;
COMMENT ON FUNCTION api.next_item(bigint) IS
    'Annotator: gives you the next item of the project, locked to you: first items waiting for your edits, then '
    'your own unfinished item, then the highest-priority oldest new item you may take (never a second item of an '
    'image you annotated; private pools and expertise respected). Returns {item} with image, draft and last '
    'review comment (and upcoming_image: the image of the item likely to come next, to prefetch), or {item: null, '
    'reason} when there is nothing (queue_empty, on_vacation).';

CREATE OR REPLACE FUNCTION api.heartbeat(item_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_signed_in();  -- the annotator role in the item's project: core.lock_held_item
    it core.work_item := core.lock_held_item(item_id, me);
BEGIN
    RETURN jsonb_build_object('id', it.id, 'lock_expires_at', core.extend_lock(it));
END
$$;
COMMENT ON FUNCTION api.heartbeat(bigint) IS
    'Annotator: extends your lock on the item you hold; 409 when the lock was lost.';

CREATE OR REPLACE FUNCTION api.save_draft(item_id bigint, content jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_signed_in();  -- the annotator role in the item's project: core.lock_held_item
    it core.work_item := core.lock_held_item(item_id, me);
    saved timestamptz;
BEGIN
    PERFORM core.validate_content(it, content, false);
    INSERT INTO core.annotation_draft AS d (item_id, author_id, content) VALUES (it.id, me, content)
    ON CONFLICT ON CONSTRAINT annotation_draft_pkey DO UPDATE SET content = EXCLUDED.content, updated_at = now()
    RETURNING d.updated_at INTO saved;
    -- saving is activity: it extends the lock like a heartbeat
    RETURN jsonb_build_object('id', it.id, 'saved_at', saved, 'lock_expires_at', core.extend_lock(it));
END
$$;
COMMENT ON FUNCTION api.save_draft(bigint, jsonb) IS
    'Annotator: autosaves your unfinished annotation of the item you hold (checked for shape, not completeness) '
    'and extends the lock. Not a revision.';

CREATE OR REPLACE FUNCTION api.submit_annotation(item_id bigint, content jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- revision_seq is taken from the item row, which is locked first: gapless and unique per item.
DECLARE
    me bigint := core.require_signed_in();  -- the annotator role in the item's project: core.lock_held_item
    it core.work_item := core.lock_held_item(item_id, me);
    cls bigint;
    seq integer;
BEGIN
    cls := core.validate_content(it, content, true);
    PERFORM core.begin_action('submit_annotation');
    UPDATE core.work_item w
       SET status = 'review', assignee_id = NULL, locked_at = NULL, lock_expires_at = NULL, review_stage = 1,
           last_revision_seq = w.last_revision_seq + 1, submitted_at = now()
     WHERE w.id = it.id
    RETURNING w.last_revision_seq INTO seq;
    INSERT INTO core.annotation_revision (item_id, revision_seq, author_id, content, class_id, locked_at)
    VALUES (it.id, seq, me, content, cls, it.locked_at);
    DELETE FROM core.annotation_draft d WHERE d.item_id = it.id AND d.author_id = me;
    RETURN jsonb_build_object('id', it.id, 'status', 'review', 'revision_seq', seq);
END
$$;
COMMENT ON FUNCTION api.submit_annotation(bigint, jsonb) IS
    'Annotator: submits your annotation of the item you hold ({class, descriptors, description, regions, '
    'confidence, notes}, validated against the taxonomy and descriptor schema) as the next immutable revision; '
    'the item goes to review. 400 naming the field on invalid content; 409 when you no longer hold the item.';

CREATE OR REPLACE FUNCTION api.reject_image(item_id bigint, reason text, comment text DEFAULT '')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_signed_in();  -- the annotator role in the item's project: core.lock_held_item
    it core.work_item := core.lock_held_item(item_id, me);
    flag_id bigint;
BEGIN
    IF reason IS NULL OR reason NOT IN (SELECT unnest(enum_range(NULL::core.flag_reason))::text) THEN
        PERFORM core.invalid('reason', 'must be one of ' ||
                             (SELECT string_agg(x::text, ', ') FROM unnest(enum_range(NULL::core.flag_reason)) x));
    END IF;
    IF reason = 'other' AND length(btrim(coalesce(comment, ''))) = 0 THEN
        PERFORM core.invalid('comment', 'say why when the reason is other');
    END IF;
    PERFORM core.begin_action('reject_image');
    UPDATE core.work_item w SET status = 'rejected', assignee_id = NULL, locked_at = NULL, lock_expires_at = NULL
     WHERE w.id = it.id;
    UPDATE core.image i SET status = 'flagged' WHERE i.id = it.image_id AND i.status = 'active';
    INSERT INTO core.work_item_flag (item_id, image_id, reason, comment, raised_by)
    VALUES (it.id, it.image_id, reason::core.flag_reason, coalesce(comment, ''), me)
    RETURNING id INTO flag_id;
    PERFORM core.audit('reject_image', 'work_item_flag', flag_id, NULL,
                       jsonb_build_object('item_id', it.id, 'reason', reason, 'comment', comment));
    RETURN jsonb_build_object('id', it.id, 'status', 'rejected', 'flag_id', flag_id);
END
$$;
COMMENT ON FUNCTION api.reject_image(bigint, text, text) IS
    'Annotator: rejects the image of the item you hold (bad_quality, not_skin, not_a_lesion, duplicate, '
    'identifiable, wrong_source_class, other + comment); an admin resolves the flag.';

CREATE OR REPLACE FUNCTION api.release_item(item_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_signed_in();  -- the annotator role in the item's project: core.lock_held_item
    it core.work_item := core.lock_held_item(item_id, me);
BEGIN
    IF it.last_revision_seq > 0 THEN
        -- an item sent back for edits stays with its annotator: it cannot go back to the pool
        RAISE EXCEPTION 'work item % has revisions and stays with you', item_id USING ERRCODE = 'PT409';
    END IF;
    PERFORM core.begin_action('release_item');
    UPDATE core.work_item w SET status = 'new', annotator_id = NULL, assignee_id = NULL, locked_at = NULL,
                                lock_expires_at = NULL
     WHERE w.id = it.id;
    DELETE FROM core.annotation_draft d WHERE d.item_id = it.id;
    -- deferred for me (next_item passes over it while anything else is left, for the project's skip_minutes)
    INSERT INTO core.item_skip AS s (item_id, user_id) VALUES (it.id, me)
    ON CONFLICT ON CONSTRAINT item_skip_pkey DO UPDATE SET skipped_at = now();
    RETURN jsonb_build_object('id', it.id, 'status', 'new');
END
$$;
COMMENT ON FUNCTION api.release_item(bigint) IS
    'Annotator: gives back the item you hold (skip) so that someone else can take it; your draft is discarded. '
    'It is deferred for you: next_item passes over it while anything else is left, for the project''s '
    'skip_minutes (60 by default; api.set_skip_minutes).';

CREATE OR REPLACE FUNCTION api.item_detail(item_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    doc jsonb;
BEGIN
    PERFORM core.require_signed_in();
    doc := core.item_read(item_id, true);  -- under the caller's row-level security; the read is recorded
    IF doc IS NULL THEN
        PERFORM core.item_not_found(item_id);
    END IF;
    RETURN doc;
END
$$;
COMMENT ON FUNCTION api.item_detail(bigint) IS
    'An item as you may see it: image, your draft, every revision, reviews and flags. An item you may not see '
    'answers exactly like one that does not exist (404).';

CREATE OR REPLACE FUNCTION api.my_queue(project_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    me bigint := auth.uid();
BEGIN
    PERFORM core.require_member(project_id);
    RETURN jsonb_build_object(
        'submitted_today', (SELECT count(*) FROM core.annotation_revision r JOIN core.work_item w ON w.id = r.item_id
                             WHERE r.author_id = me AND w.project_id = my_queue.project_id
                               AND r.created_at >= date_trunc('day', now())),
        'in_progress', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', w.id, 'lock_expires_at', w.lock_expires_at)
                                                  ORDER BY w.id), '[]')
                          FROM core.work_item w WHERE w.project_id = my_queue.project_id
                           AND w.status = 'in_progress' AND w.assignee_id = me),
        'edits_requested', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', w.id, 'priority', w.priority,
                                                                         'since', w.updated_at)
                                                      ORDER BY w.priority DESC, w.updated_at), '[]')
                              FROM core.work_item w WHERE w.project_id = my_queue.project_id
                               AND w.status = 'edits_requested' AND w.annotator_id = me),
        'in_review', (SELECT count(*) FROM core.work_item w WHERE w.project_id = my_queue.project_id
                         AND w.status = 'review' AND w.annotator_id = me),
        'done', (SELECT count(*) FROM core.work_item w WHERE w.project_id = my_queue.project_id
                    AND w.status = 'done' AND w.annotator_id = me));
END
$$;
COMMENT ON FUNCTION api.my_queue(bigint) IS
    'Your work in a project: revisions submitted today, the item you hold, items waiting for your edits, '
    'items of yours in review and done.';

GRANT EXECUTE ON FUNCTION core.item_document(bigint, boolean), core.item_not_found(bigint)
    TO dl_annotator, dl_reviewer, dl_admin;
GRANT EXECUTE ON FUNCTION api.next_item(bigint), api.heartbeat(bigint), api.save_draft(bigint, jsonb),
                          api.submit_annotation(bigint, jsonb), api.reject_image(bigint, text, text),
                          api.release_item(bigint), api.my_queue(bigint)
    TO dl_annotator;
GRANT EXECUTE ON FUNCTION api.item_detail(bigint) TO dl_annotator, dl_reviewer, dl_admin;
