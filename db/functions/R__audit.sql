-- The audit trail: one helper every function calls, and the guard that keeps history append-only.

CREATE OR REPLACE FUNCTION core.audit(p_action text, p_entity text, p_entity_id bigint,
                                      p_before jsonb DEFAULT NULL, p_after jsonb DEFAULT NULL,
                                      p_actor bigint DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- PL/pgSQL, not SQL, on the hot paths of this schema: a SQL function with a SET clause is never inlined and so is
-- parsed and planned on every call, where PL/pgSQL keeps its plans for the session.
BEGIN
    INSERT INTO audit.event (actor_id, action, entity, entity_id, before, after, request_id, organization_id)
    VALUES (coalesce(p_actor, auth.uid()), p_action, p_entity, p_entity_id, p_before, p_after,
            auth.claims() ->> 'request_id', nullif(current_setting('dl.organization', true), '')::bigint);
END
$$;
COMMENT ON FUNCTION core.audit(text, text, bigint, jsonb, jsonb, bigint) IS
    'Writes one audit.event for the current caller and request, in the organization the guards named '
    '(core.in_organization): its admins may read it.';

CREATE OR REPLACE FUNCTION core.refuse_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    -- the one exception: an erasure (core.erase_image, core.erase_person) leaves tombstones where content was
    IF current_setting('dl.erasing', true) = 'on' AND TG_OP IN ('UPDATE', 'DELETE') THEN
        RETURN CASE TG_OP WHEN 'UPDATE' THEN NEW ELSE OLD END;
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP
        USING ERRCODE = '25006', HINT = 'History is never rewritten; add a new row instead.';
END
$$;
COMMENT ON FUNCTION core.refuse_change() IS
    'Trigger of the append-only tables (annotation_revision, review, review_hint, audit.event, audit.access, '
    'ai_suggestion): UPDATE, DELETE and TRUNCATE raise 25006, except the tombstones an erasure writes (dl.erasing).';

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['core.annotation_revision', 'core.review', 'core.review_hint', 'audit.event'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS append_only ON %s', t);
        EXECUTE format('CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON %s
                        FOR EACH ROW EXECUTE FUNCTION core.refuse_change()', t);
        EXECUTE format('DROP TRIGGER IF EXISTS append_only_truncate ON %s', t);
        EXECUTE format('CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON %s
                        FOR EACH STATEMENT EXECUTE FUNCTION core.refuse_change()', t);
    END LOOP;
END
$$;

-- The access audit (V23) is partitioned: row triggers only (they reach every partition).
DROP TRIGGER IF EXISTS append_only ON audit.access;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON audit.access
    FOR EACH ROW EXECUTE FUNCTION core.refuse_change();

-- AI suggestions are never changed either; a new run adds new ones (V11; the queue: R__ai_queue.sql).
DROP TRIGGER IF EXISTS append_only ON core.ai_suggestion;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON core.ai_suggestion
    FOR EACH ROW EXECUTE FUNCTION core.refuse_change();
