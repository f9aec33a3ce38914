-- A rule's item count (items not cancelled, gold checks aside: what max_items limits) kept on the rule row.
-- Before, every new image counted every item of every rule of its project to learn whether max_items left room:
-- O(items) per upload, 80 s for 20,000 uploads into one rule.

ALTER TABLE core.work_rule ADD COLUMN items integer NOT NULL DEFAULT 0 CHECK (items >= 0);
COMMENT ON COLUMN core.work_rule.items IS
    'Items of the rule that count against max_items (not cancelled, not gold checks); kept by triggers.';
UPDATE core.work_rule r
   SET items = (SELECT count(*) FROM core.work_item w
                 WHERE w.rule_id = r.id AND w.status <> 'cancelled' AND NOT w.gold_check);

-- New items, per statement: generating 100,000 items updates each rule row once, not 100,000 times.
CREATE FUNCTION core.count_added_items() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    UPDATE core.work_rule r SET items = r.items + a.n
      FROM (SELECT rule_id, count(*) AS n FROM added
             WHERE status <> 'cancelled' AND NOT gold_check GROUP BY rule_id) a
     WHERE r.id = a.rule_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER count_added_items AFTER INSERT ON core.work_item REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION core.count_added_items();

-- An item cancelled (or back), made a gold check, or deleted: rare, row by row. The WHEN clause keeps claims,
-- heartbeats and submits from calling anything.
CREATE FUNCTION core.count_changed_item() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    was integer := CASE WHEN TG_OP <> 'INSERT' AND OLD.status <> 'cancelled' AND NOT OLD.gold_check THEN 1 ELSE 0 END;
    is_ integer := CASE WHEN TG_OP <> 'DELETE' AND NEW.status <> 'cancelled' AND NOT NEW.gold_check THEN 1 ELSE 0 END;
BEGIN
    IF is_ <> was THEN
        UPDATE core.work_rule r SET items = r.items + is_ - was
         WHERE r.id = CASE WHEN TG_OP = 'DELETE' THEN OLD.rule_id ELSE NEW.rule_id END;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER count_changed_item AFTER UPDATE OF status, gold_check ON core.work_item
    FOR EACH ROW WHEN ((OLD.status = 'cancelled') <> (NEW.status = 'cancelled') OR OLD.gold_check <> NEW.gold_check)
    EXECUTE FUNCTION core.count_changed_item();
CREATE TRIGGER count_deleted_item AFTER DELETE ON core.work_item
    FOR EACH ROW EXECUTE FUNCTION core.count_changed_item();
