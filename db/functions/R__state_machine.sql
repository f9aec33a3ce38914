-- The work item state machine: every status change must be a row of core.item_transition for the action
-- the calling function declared. Nothing else -- no function, no admin in psql -- can move an item.

CREATE OR REPLACE FUNCTION core.begin_action(p_action text) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
BEGIN
    PERFORM set_config('dl.action', p_action, true);
END
$$;
COMMENT ON FUNCTION core.begin_action(text) IS 'Declares which workflow action the following item updates perform.';

CREATE OR REPLACE FUNCTION core.check_transition() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
DECLARE
    act text := nullif(current_setting('dl.action', true), '');
BEGIN
    NEW.updated_at := now();
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT EXISTS (
        SELECT 1 FROM core.item_transition t
         WHERE t.from_status = OLD.status AND t.to_status = NEW.status AND t.action = act) THEN
        RAISE EXCEPTION 'illegal transition of work item %: % -> % by %', OLD.id, OLD.status, NEW.status,
                        coalesce(act, 'a direct update')
            USING ERRCODE = 'PT409', HINT = 'Use the api function for this action.';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION core.audit_item_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    IF current_setting('dl.action', true) = 'reprioritise_rule' THEN
        RETURN NULL;  -- a rule's new priority reaching its items: one event for the rule (api.update_work_rule)
    END IF;
    PERFORM core.audit(coalesce(nullif(current_setting('dl.action', true), ''), 'update'), 'work_item', NEW.id,
        jsonb_build_object('status', OLD.status, 'annotator_id', OLD.annotator_id, 'assignee_id', OLD.assignee_id,
                           'review_stage', OLD.review_stage, 'priority', OLD.priority),
        jsonb_build_object('status', NEW.status, 'annotator_id', NEW.annotator_id, 'assignee_id', NEW.assignee_id,
                           'review_stage', NEW.review_stage, 'priority', NEW.priority));
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS check_transition ON core.work_item;
CREATE TRIGGER check_transition BEFORE UPDATE ON core.work_item
    FOR EACH ROW EXECUTE FUNCTION core.check_transition();

-- Audited: any change of state, holder, owner, stage or priority (a heartbeat only moves the expiry: not audited).
DROP TRIGGER IF EXISTS audit_item_change ON core.work_item;
CREATE TRIGGER audit_item_change AFTER UPDATE ON core.work_item
    FOR EACH ROW WHEN ((OLD.status, OLD.assignee_id, OLD.annotator_id, OLD.review_stage, OLD.priority)
                       IS DISTINCT FROM
                       (NEW.status, NEW.assignee_id, NEW.annotator_id, NEW.review_stage, NEW.priority))
    EXECUTE FUNCTION core.audit_item_change();
