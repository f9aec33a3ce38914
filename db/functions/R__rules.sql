-- Work rules (admin) and the generation of work items from them, within each rule's limit.

CREATE OR REPLACE FUNCTION core.rule_json(p_rule bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT jsonb_build_object('id', r.id, 'project_id', r.project_id, 'name', r.name,
                              'source_classes', to_jsonb(r.source_classes), 'upload_batch', r.upload_batch,
                              'metadata_filter', r.metadata_filter, 'max_items', r.max_items,
                              'priority', r.priority, 'annotations_per_image', r.annotations_per_image,
                              'expertise', r.expertise, 'pool_user_ids', to_jsonb(r.pool_user_ids),
                              'active', r.active, 'gold_rate', r.gold_rate, 'active_learning', r.active_learning,
                              'items', r.items)
      FROM core.work_rule r WHERE r.id = p_rule
$$;
COMMENT ON FUNCTION core.rule_json(bigint) IS
    'A work rule as JSON, every setting and its item count: what the rule functions answer and audit, and the '
    'project overview lists.';

-- Which images a rule takes: the one predicate of item generation and of the admin's preview.
CREATE OR REPLACE FUNCTION core.rule_takes(p_status core.image_status, p_source_class text, p_batch text,
                                           p_metadata jsonb, p_sources text[], p_rule_batch text, p_filter jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_status = 'active'
       AND (p_sources IS NULL OR p_source_class = ANY (p_sources))
       AND (p_rule_batch IS NULL OR p_batch = p_rule_batch)
       AND (p_filter IS NULL OR p_metadata @> p_filter)
$$;
COMMENT ON FUNCTION core.rule_takes(core.image_status, text, text, jsonb, text[], text, jsonb) IS
    'True when a work rule with these filters takes an image with these fields (no SET clause: inlined).';

CREATE OR REPLACE FUNCTION core.generate_items(p_rule bigint, p_image bigint DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
-- Creates the missing items of a rule (or of one new image) without exceeding max_items. The rule row is locked
-- first, so concurrent generators and uploads count the same items; ON CONFLICT makes a rerun a no-op.
DECLARE
    r core.work_rule;
    room integer;
    created integer;
BEGIN
    SELECT * INTO r FROM core.work_rule x WHERE x.id = p_rule FOR UPDATE;
    IF NOT FOUND OR NOT r.active THEN
        RETURN 0;
    END IF;
    room := r.max_items - r.items;  -- the rule row is locked: its count is the one every generator sees
    IF room <= 0 THEN
        RETURN 0;
    END IF;
    -- Whole images only: every slot of an image, or none of them, so double annotation is never half-made.
    WITH missing AS (
        SELECT i.id AS image_id, s.slot
          FROM core.image i
          CROSS JOIN generate_series(1, r.annotations_per_image) AS s(slot)
         WHERE i.project_id = r.project_id AND (p_image IS NULL OR i.id = p_image)
           AND core.rule_takes(i.status, i.source_class, i.upload_batch, i.metadata,
                               r.source_classes, r.upload_batch, r.metadata_filter)
           AND NOT EXISTS (SELECT 1 FROM core.work_item w
                            WHERE w.rule_id = r.id AND w.image_id = i.id AND w.slot = s.slot)
    )
    -- count(*) OVER (ORDER BY image_id) counts an image's slots together (they are peers in RANGE mode): the
    -- running total of whole images, in one pass and without a join whose plan depends on fresh statistics.
    INSERT INTO core.work_item (project_id, image_id, rule_id, slot, priority)
    SELECT r.project_id, c.image_id, r.id, c.slot, r.priority
      FROM (SELECT m.image_id, m.slot, count(*) OVER (ORDER BY m.image_id) AS running FROM missing m) c
     WHERE c.running <= room
    ON CONFLICT (rule_id, image_id, slot) DO NOTHING;
    GET DIAGNOSTICS created = ROW_COUNT;
    RETURN created;
END
$$;

CREATE OR REPLACE FUNCTION core.items_for_new_image() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    rid bigint;
BEGIN
    FOR rid IN SELECT r.id FROM core.work_rule r WHERE r.project_id = NEW.project_id AND r.active ORDER BY r.id LOOP
        PERFORM core.generate_items(rid, NEW.id);
    END LOOP;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS items_for_new_image ON core.image;
CREATE TRIGGER items_for_new_image AFTER INSERT ON core.image
    FOR EACH ROW EXECUTE FUNCTION core.items_for_new_image();

CREATE OR REPLACE FUNCTION core.check_rule_fields(p_rule core.work_rule) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
BEGIN
    IF p_rule.max_items IS NULL OR p_rule.max_items NOT BETWEEN 0 AND 10000000 THEN
        PERFORM core.invalid('max_items', 'must be between 0 and 10000000');
    END IF;
    IF p_rule.priority IS NULL OR p_rule.priority NOT BETWEEN -1000000 AND 1000000 THEN
        PERFORM core.invalid('priority', 'must be a whole number between -1000000 and 1000000');
    END IF;
    IF p_rule.annotations_per_image IS NULL OR p_rule.annotations_per_image NOT BETWEEN 1 AND 10 THEN
        PERFORM core.invalid('annotations_per_image', 'must be between 1 and 10');
    END IF;
    IF p_rule.metadata_filter IS NOT NULL AND jsonb_typeof(p_rule.metadata_filter) <> 'object' THEN
        PERFORM core.invalid('metadata_filter', 'must be a JSON object matched by containment');
    END IF;
    IF p_rule.pool_user_ids IS NOT NULL AND EXISTS (
        SELECT 1 FROM unnest(p_rule.pool_user_ids) u
         WHERE NOT EXISTS (SELECT 1 FROM core.project_member m WHERE m.project_id = p_rule.project_id
                                                                AND m.user_id = u)) THEN
        PERFORM core.invalid('pool_user_ids', 'every pool member must belong to the project');
    END IF;
    IF p_rule.gold_rate IS NULL OR p_rule.gold_rate < 0 OR p_rule.gold_rate > 0.5 THEN
        PERFORM core.invalid('gold_rate', 'must be between 0 and 0.5');
    END IF;
    IF p_rule.active_learning IS NOT NULL AND p_rule.active_learning NOT IN ('least_confidence', 'entropy') THEN
        PERFORM core.invalid('active_learning', 'must be least_confidence, entropy or null');
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION api.create_work_rule(project_id bigint, name text, max_items integer,
                                                priority integer DEFAULT 0, source_classes text[] DEFAULT NULL,
                                                upload_batch text DEFAULT NULL, metadata_filter jsonb DEFAULT NULL,
                                                annotations_per_image integer DEFAULT 1, expertise text DEFAULT NULL,
                                                pool_user_ids bigint[] DEFAULT NULL, active boolean DEFAULT true)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_role('admin');
    r core.work_rule;
BEGIN
    PERFORM core.require_project_role('admin', project_id);
    r.project_id := project_id;
    r.name := name;
    r.source_classes := source_classes;
    r.upload_batch := upload_batch;
    r.metadata_filter := metadata_filter;
    r.max_items := max_items;
    r.priority := coalesce(priority, 0);
    r.annotations_per_image := coalesce(annotations_per_image, 1);
    r.expertise := expertise;
    r.pool_user_ids := pool_user_ids;
    r.active := coalesce(active, true);
    r.gold_rate := 0;  -- set with update_work_rule once the project has gold standards
    PERFORM core.check_rule_fields(r);
    INSERT INTO core.work_rule (project_id, name, source_classes, upload_batch, metadata_filter, max_items,
                                priority, annotations_per_image, expertise, pool_user_ids, active, created_by)
    VALUES (r.project_id, r.name, r.source_classes, r.upload_batch, r.metadata_filter, r.max_items, r.priority,
            r.annotations_per_image, r.expertise, r.pool_user_ids, r.active, me)
    RETURNING id INTO r.id;
    PERFORM core.audit('create_work_rule', 'work_rule', r.id, NULL, core.rule_json(r.id));
    RETURN core.rule_json(r.id);
END
$$;
COMMENT ON FUNCTION api.create_work_rule(bigint, text, integer, integer, text[], text, jsonb, integer, text,
                                         bigint[], boolean) IS
    'Admin: defines which images to annotate (source classes, upload batch, metadata containment filter), the '
    'max_items limit, priority, annotations per image (double annotation), required expertise and private pool. '
    'Call generate_work_items to create its items; later uploads that match get items automatically.';

CREATE OR REPLACE FUNCTION api.update_work_rule(rule_id bigint, patch jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    r core.work_rule;
    k text;
    before jsonb;
    moved bigint;
BEGIN
    PERFORM core.require_role('admin');
    SELECT * INTO r FROM core.work_rule x WHERE x.id = rule_id FOR UPDATE;
    IF NOT FOUND OR NOT core.admin_of(r.project_id) THEN
        RAISE EXCEPTION 'work rule % not found', rule_id USING ERRCODE = 'P0002';
    END IF;
    IF jsonb_typeof(patch) IS DISTINCT FROM 'object' THEN
        PERFORM core.invalid('patch', 'must be a JSON object of the fields to change');
    END IF;
    FOR k IN SELECT jsonb_object_keys(patch) LOOP
        IF k NOT IN ('name', 'source_classes', 'upload_batch', 'metadata_filter', 'max_items', 'priority',
                     'annotations_per_image', 'expertise', 'pool_user_ids', 'active', 'gold_rate',
                     'active_learning') THEN
            PERFORM core.invalid('patch.' || k, 'is not a field of a work rule');
        END IF;
    END LOOP;
    before := core.rule_json(rule_id);
    BEGIN
        r := jsonb_populate_record(r, patch);
    EXCEPTION WHEN invalid_text_representation OR datatype_mismatch OR invalid_parameter_value
                 OR numeric_value_out_of_range THEN
        PERFORM core.invalid('patch', 'a field has the wrong type: ' || SQLERRM);
    END;
    PERFORM core.check_rule_fields(r);
    UPDATE core.work_rule x SET name = r.name, source_classes = r.source_classes, upload_batch = r.upload_batch,
           metadata_filter = r.metadata_filter, max_items = r.max_items, priority = r.priority,
           annotations_per_image = r.annotations_per_image, expertise = r.expertise,
           pool_user_ids = r.pool_user_ids, active = r.active, gold_rate = r.gold_rate,
           active_learning = r.active_learning
     WHERE x.id = rule_id;
    IF (before ->> 'priority')::integer IS DISTINCT FROM r.priority THEN
        -- the rule's open items follow its priority in one statement; an item whose priority was set apart (a red
        -- flag, api.set_item_priority) keeps it. One audit event for the rule, not one per item.
        PERFORM core.begin_action('reprioritise_rule');
        UPDATE core.work_item w SET priority = r.priority
         WHERE w.rule_id = r.id AND w.status IN ('new', 'in_progress', 'edits_requested')
           AND w.priority = (before ->> 'priority')::integer;
        GET DIAGNOSTICS moved = ROW_COUNT;
        PERFORM core.audit('reprioritise_rule', 'work_rule', rule_id,
                           jsonb_build_object('priority', (before ->> 'priority')::integer),
                           jsonb_build_object('priority', r.priority, 'items', moved));
    END IF;
    IF (before ->> 'active_learning') IS DISTINCT FROM r.active_learning THEN
        -- re-key the rule's waiting items from what the AI already said
        PERFORM core.ai_rekey(ARRAY(SELECT w.id FROM core.work_item w WHERE w.rule_id = r.id AND w.status = 'new'));
    END IF;
    PERFORM core.audit('update_work_rule', 'work_rule', rule_id, before, core.rule_json(rule_id));
    RETURN core.rule_json(rule_id);
END
$$;
COMMENT ON FUNCTION api.update_work_rule(bigint, jsonb) IS
    'Admin: changes the given fields of a rule (a JSON object; null clears an optional field). A new priority moves '
    'the rule''s open items with it at once (those whose priority was set apart keep theirs). Lowering max_items '
    'never deletes items; deactivating stops handing out its items. gold_rate (0 to 0.5) mixes gold checks into '
    'its annotators'' queues at that rate. active_learning (least_confidence or entropy; null: off) puts the new '
    'items the AI was least sure about first among equal priorities.';

CREATE OR REPLACE FUNCTION api.generate_work_items(rule_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    pid bigint;
    n integer;
BEGIN
    PERFORM core.require_role('admin');
    SELECT r.project_id INTO pid FROM core.work_rule r WHERE r.id = rule_id;
    IF pid IS NULL OR NOT core.admin_of(pid) THEN
        RAISE EXCEPTION 'work rule % not found', rule_id USING ERRCODE = 'P0002';
    END IF;
    n := core.generate_items(rule_id);
    PERFORM core.audit('generate_work_items', 'work_rule', rule_id, NULL, jsonb_build_object('created', n));
    RETURN jsonb_build_object('created', n, 'rule', core.rule_json(rule_id));
END
$$;
COMMENT ON FUNCTION api.generate_work_items(bigint) IS
    'Admin: creates the rule''s missing work items, never beyond max_items (whole images only); running it again '
    'when nothing changed creates nothing.';

CREATE OR REPLACE FUNCTION api.preview_work_rule(project_id bigint, source_classes text[] DEFAULT NULL,
                                                 upload_batch text DEFAULT NULL, metadata_filter jsonb DEFAULT NULL,
                                                 annotations_per_image integer DEFAULT 1,
                                                 max_items integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- The rule as create_work_rule would store it, checked by the same core.check_rule_fields; then generation's own
-- predicate and whole-images limit. No max_items: as many as the checks allow.
DECLARE
    r core.work_rule;
    images bigint;
BEGIN
    PERFORM core.require_role('admin');
    PERFORM core.require_project_role('admin', project_id);
    r.project_id := project_id;
    r.source_classes := source_classes;
    r.upload_batch := upload_batch;
    r.metadata_filter := metadata_filter;
    r.max_items := coalesce(max_items, 10000000);
    r.annotations_per_image := coalesce(annotations_per_image, 1);
    r.priority := 0;  -- does not decide which images match
    r.gold_rate := 0;
    PERFORM core.check_rule_fields(r);
    SELECT count(*) INTO images FROM core.image i
     WHERE i.project_id = r.project_id
       AND core.rule_takes(i.status, i.source_class, i.upload_batch, i.metadata, r.source_classes,
                           r.upload_batch, r.metadata_filter);
    RETURN jsonb_build_object('images', images, 'items', images * r.annotations_per_image,
                              'would_create', least(images, r.max_items / r.annotations_per_image)
                                              * r.annotations_per_image);
END
$$;
COMMENT ON FUNCTION api.preview_work_rule(bigint, text[], text, jsonb, integer, integer) IS
    'Admin: how many active images a rule with these filters would take, the items that makes, and how many '
    'generate_work_items would create under max_items (whole images only) - before creating the rule.';

GRANT EXECUTE ON FUNCTION api.preview_work_rule(bigint, text[], text, jsonb, integer, integer) TO dl_admin;

GRANT EXECUTE ON FUNCTION api.create_work_rule(bigint, text, integer, integer, text[], text, jsonb, integer, text,
                                               bigint[], boolean),
                          api.update_work_rule(bigint, jsonb), api.generate_work_items(bigint)
    TO dl_admin;
