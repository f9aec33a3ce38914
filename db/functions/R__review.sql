-- Quality control: next_review, approve, request_changes.

CREATE OR REPLACE FUNCTION core.lock_review_item(p_item bigint, p_me bigint) RETURNS core.work_item
LANGUAGE plpgsql SET search_path = '' AS $$
-- Locks the row first; the caller must hold it in review (taken with next_review, lock not expired) and still be a
-- reviewer of the project.
DECLARE
    it core.work_item := core.lock_item_as(p_item, 'reviewer');
BEGIN
    IF it.status <> 'review' OR it.assignee_id IS DISTINCT FROM p_me OR it.lock_expires_at <= now() THEN
        RAISE EXCEPTION 'you do not hold work item % for review', p_item USING ERRCODE = 'PT409',
            HINT = 'Take it with next_review first; a review lock also expires.';
    END IF;
    RETURN it;
END
$$;

CREATE OR REPLACE FUNCTION api.next_review(project_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- Never your own annotation, nor any read of an image you annotated (double reads stay independent); stage 2 only
-- for level-2 reviewers of the project and never by whoever approved stage 1.
DECLARE
    a core.actor := core.caller('reviewer', project_id);
    me bigint := a.id;
    level smallint := a.review_level;
    minutes integer;
    picked bigint;
BEGIN
    SELECT p.lock_minutes INTO minutes FROM core.project p WHERE p.id = next_review.project_id;

    SELECT w.id INTO picked FROM core.work_item w
     WHERE w.project_id = next_review.project_id AND w.status = 'review' AND w.assignee_id = me
     ORDER BY w.id LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF picked IS NULL THEN
        SELECT w.id INTO picked FROM core.work_item w
         WHERE w.project_id = next_review.project_id AND w.status = 'review'
           AND (w.assignee_id IS NULL OR w.lock_expires_at < now())
           AND w.annotator_id <> me
           AND NOT EXISTS (SELECT 1 FROM core.work_item o WHERE o.image_id = w.image_id AND o.annotator_id = me)
           AND (w.review_stage = 1 OR level >= 2)
           AND NOT EXISTS (SELECT 1 FROM core.review v JOIN core.annotation_revision r ON r.id = v.revision_id
                            WHERE v.item_id = w.id AND r.revision_seq = w.last_revision_seq AND v.reviewer_id = me)
         ORDER BY w.review_stage DESC, w.priority DESC, w.submitted_at, w.id
         LIMIT 1 FOR UPDATE SKIP LOCKED;
    END IF;
    IF picked IS NULL THEN
        RETURN jsonb_build_object('item', NULL, 'reason', 'queue_empty');
    END IF;
    PERFORM core.begin_action('next_review');
    UPDATE core.work_item w SET assignee_id = me, locked_at = now(),
                                lock_expires_at = now() + make_interval(mins => minutes)
     WHERE w.id = picked;
    RETURN jsonb_build_object('item', core.item_read(picked, true));
END
$$;
COMMENT ON FUNCTION api.next_review(bigint) IS
    'Reviewer: locks the next item in review for you (second-stage items first, then priority and age), with '
    'its revision history. Never your own annotation nor another read of an image you annotated; stage 2 needs '
    'review level 2 in the project and a different reviewer from stage 1. Returns {item} or {item: null, reason: queue_empty}.';

CREATE OR REPLACE FUNCTION api.approve(item_id bigint, comment text DEFAULT '')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_role('reviewer');
    it core.work_item := core.lock_review_item(item_id, me);
    stages smallint;
    rev bigint;
BEGIN
    SELECT p.review_stages INTO stages FROM core.project p WHERE p.id = it.project_id;
    SELECT r.id INTO rev FROM core.annotation_revision r
     WHERE r.item_id = it.id AND r.revision_seq = it.last_revision_seq;
    INSERT INTO core.review (item_id, revision_id, stage, reviewer_id, decision, comment)
    VALUES (it.id, rev, it.review_stage, me, 'approved', coalesce(comment, ''));
    PERFORM core.begin_action('approve');
    IF it.review_stage < stages THEN
        UPDATE core.work_item w SET review_stage = it.review_stage + 1, assignee_id = NULL, locked_at = NULL,
                                    lock_expires_at = NULL
         WHERE w.id = it.id;
        RETURN jsonb_build_object('id', it.id, 'status', 'review', 'review_stage', it.review_stage + 1);
    END IF;
    UPDATE core.work_item w SET status = 'done', assignee_id = NULL, locked_at = NULL, lock_expires_at = NULL
     WHERE w.id = it.id;
    RETURN jsonb_build_object('id', it.id, 'status', 'done', 'review_stage', it.review_stage);
END
$$;
COMMENT ON FUNCTION api.approve(bigint, text) IS
    'Reviewer: approves the item you hold for review; it moves to the second review stage when the project has '
    'one, else it is done.';

CREATE OR REPLACE FUNCTION api.request_changes(item_id bigint, comment text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_role('reviewer');
    it core.work_item := core.lock_review_item(item_id, me);
    rev bigint;
BEGIN
    IF length(btrim(coalesce(comment, ''))) = 0 THEN
        PERFORM core.invalid('comment', 'say what must change');
    END IF;
    SELECT r.id INTO rev FROM core.annotation_revision r
     WHERE r.item_id = it.id AND r.revision_seq = it.last_revision_seq;
    INSERT INTO core.review (item_id, revision_id, stage, reviewer_id, decision, comment)
    VALUES (it.id, rev, it.review_stage, me, 'changes_requested', comment);
    PERFORM core.begin_action('request_changes');
    UPDATE core.work_item w SET status = 'edits_requested', assignee_id = NULL, locked_at = NULL,
                                lock_expires_at = NULL, review_stage = 1
     WHERE w.id = it.id;
    RETURN jsonb_build_object('id', it.id, 'status', 'edits_requested', 'annotator_id', it.annotator_id);
END
$$;
COMMENT ON FUNCTION api.request_changes(bigint, text) IS
    'Reviewer: sends the item you hold back to its annotator (only them) with your comment, which is required.';

GRANT EXECUTE ON FUNCTION api.next_review(bigint), api.approve(bigint, text), api.request_changes(bigint, text)
    TO dl_reviewer;
