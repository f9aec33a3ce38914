-- Quality control: gold standards and gold checks, consistency rules, and the review hints raised on submit.

CREATE OR REPLACE FUNCTION api.set_gold(image_id bigint, gold boolean DEFAULT true)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- The reference is the final revision of the image's most recently approved ordinary item.
DECLARE
    me bigint := core.require_role('admin');
    img core.image;
    ref core.annotation_revision;
BEGIN
    SELECT * INTO img FROM core.image i WHERE i.id = set_gold.image_id;
    IF NOT FOUND OR NOT core.admin_of(img.project_id) THEN
        RAISE EXCEPTION 'image % not found', set_gold.image_id USING ERRCODE = 'P0002';
    END IF;
    IF NOT gold THEN
        UPDATE core.gold_standard g SET active = false WHERE g.image_id = img.id;
        PERFORM core.audit('unset_gold', 'image', img.id, NULL, NULL);
        RETURN jsonb_build_object('image_id', img.id, 'gold', false);
    END IF;
    SELECT r.* INTO ref FROM core.work_item w
      JOIN core.annotation_revision r ON r.item_id = w.id AND r.revision_seq = w.last_revision_seq
     WHERE w.image_id = img.id AND w.status = 'done' AND NOT w.gold_check
     ORDER BY w.updated_at DESC, w.id DESC LIMIT 1;
    IF NOT FOUND THEN
        PERFORM core.invalid('image_id', 'only an image with an approved annotation can be gold');
    END IF;
    INSERT INTO core.gold_standard AS g (image_id, project_id, revision_id, class_id, content, marked_by)
    VALUES (img.id, img.project_id, ref.id, ref.class_id, ref.content, me)
    ON CONFLICT ON CONSTRAINT gold_standard_pkey DO UPDATE
       SET revision_id = EXCLUDED.revision_id, class_id = EXCLUDED.class_id, content = EXCLUDED.content,
           marked_by = EXCLUDED.marked_by, marked_at = now(), active = true;
    PERFORM core.audit('set_gold', 'image', img.id, NULL, jsonb_build_object('revision_id', ref.id,
                                                                             'class_id', ref.class_id));
    RETURN jsonb_build_object('image_id', img.id, 'gold', true, 'revision_id', ref.id, 'class_id', ref.class_id);
END
$$;
COMMENT ON FUNCTION api.set_gold(bigint, boolean) IS
    'Admin: makes an approved image a gold standard (its final approved annotation is the reference), or with '
    'gold = false retires it. Work rules with a gold_rate then mix it into annotators'' queues as gold checks.';

CREATE OR REPLACE FUNCTION core.gold_check_for(p_user core.actor, p_project bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
-- At the rate of the caller's rule, a new item on a gold image they have never seen, or NULL. Called by next_item
-- before it looks for ordinary new items; the item is then claimed like any other.
DECLARE
    r core.work_rule;
    img bigint;
    made bigint;
BEGIN
    SELECT x.* INTO r FROM core.work_rule x
     WHERE x.project_id = p_project AND x.active AND x.gold_rate > 0
       AND (x.pool_user_ids IS NULL OR p_user.id = ANY (x.pool_user_ids))
       AND (x.expertise IS NULL OR x.expertise = ANY (p_user.expertise))
     ORDER BY x.gold_rate DESC, x.id LIMIT 1;
    IF NOT FOUND OR random() >= r.gold_rate THEN
        RETURN NULL;
    END IF;
    SELECT g.image_id INTO img FROM core.gold_standard g
     WHERE g.project_id = p_project AND g.active
       AND NOT EXISTS (SELECT 1 FROM core.work_item o WHERE o.image_id = g.image_id AND o.annotator_id = p_user.id
                                                       AND o.status <> 'cancelled')
     ORDER BY random() LIMIT 1;
    IF img IS NULL THEN
        RETURN NULL;
    END IF;
    -- slots above 1000 are gold checks: one per annotator of the image, never colliding with the rule's own
    INSERT INTO core.work_item (project_id, image_id, rule_id, slot, priority, gold_check)
    VALUES (p_project, img, r.id,
            (SELECT greatest(coalesce(max(o.slot), 1000), 1000) + 1 FROM core.work_item o
              WHERE o.rule_id = r.id AND o.image_id = img),
            r.priority, true)
    RETURNING id INTO made;
    RETURN made;
EXCEPTION WHEN unique_violation THEN
    RETURN NULL;  -- a concurrent gold check took that slot: an ordinary item this time
END
$$;
COMMENT ON FUNCTION core.gold_check_for(core.actor, bigint) IS
    'At the rate of the caller''s rule, a new item on a gold image they have never seen, or NULL; called by '
    'api.next_item before ordinary new items.';

CREATE OR REPLACE FUNCTION api.create_consistency_rule(project_id bigint, class_id bigint, field text, expect text,
                                                       value jsonb, message text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_role('admin');
    made core.consistency_rule;
BEGIN
    PERFORM core.require_project_role('admin', project_id);
    IF NOT EXISTS (SELECT 1 FROM core.taxonomy_node n WHERE n.id = create_consistency_rule.class_id
                                                        AND n.project_id = create_consistency_rule.project_id) THEN
        PERFORM core.invalid('class_id', 'not a class of this project');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM core.descriptor_field d WHERE d.project_id = create_consistency_rule.project_id
                                                           AND d.key = create_consistency_rule.field) THEN
        PERFORM core.invalid('field', format('no descriptor %L in this project', field));
    END IF;
    IF expect IS NULL OR expect NOT IN ('equals', 'not_equals', 'contains', 'not_contains') THEN
        PERFORM core.invalid('expect', 'must be one of equals, not_equals, contains, not_contains');
    END IF;
    IF value IS NULL THEN
        PERFORM core.invalid('value', 'is required');
    END IF;
    IF length(btrim(coalesce(message, ''))) = 0 THEN
        PERFORM core.invalid('message', 'say what the reviewer should check');
    END IF;
    INSERT INTO core.consistency_rule (project_id, class_id, field, expect, value, message, created_by)
    VALUES (create_consistency_rule.project_id, create_consistency_rule.class_id, create_consistency_rule.field,
            create_consistency_rule.expect, create_consistency_rule.value, btrim(create_consistency_rule.message), me)
    RETURNING * INTO made;
    PERFORM core.audit('create_consistency_rule', 'consistency_rule', made.id, NULL, to_jsonb(made));
    RETURN to_jsonb(made);
END
$$;
COMMENT ON FUNCTION api.create_consistency_rule(bigint, bigint, text, text, jsonb, text) IS
    'Admin: for annotations of a class or any class below it, the descriptor field is expected to equal / '
    'not_equal / contain / not_contain the value (JSON); a submitted annotation that breaks it gets a review hint '
    'with your message. Example: class Melanoma, field colours, expect not_equals, value ["brown"].';

CREATE OR REPLACE FUNCTION api.set_consistency_rule_active(rule_id bigint, active boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    r core.consistency_rule;
BEGIN
    PERFORM core.require_role('admin');
    SELECT * INTO r FROM core.consistency_rule c WHERE c.id = rule_id;
    IF NOT FOUND OR NOT core.admin_of(r.project_id) THEN
        RAISE EXCEPTION 'consistency rule % not found', rule_id USING ERRCODE = 'P0002';
    END IF;
    UPDATE core.consistency_rule c SET active = set_consistency_rule_active.active WHERE c.id = r.id
    RETURNING * INTO r;
    PERFORM core.audit('set_consistency_rule_active', 'consistency_rule', r.id, NULL, to_jsonb(r));
    RETURN to_jsonb(r);
END
$$;
COMMENT ON FUNCTION api.set_consistency_rule_active(bigint, boolean) IS
    'Admin: switches a consistency rule on or off (rules are kept, not deleted, so past hints stay explained).';

CREATE OR REPLACE FUNCTION core.raise_review_hints() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
-- On every new revision: class/descriptor rules, disagreement with a confident AI, and a submit much faster than
-- the author's usual pace.
DECLARE
    proj core.project;
    top jsonb;
    model text;
    active_s numeric := extract(epoch FROM NEW.created_at - NEW.locked_at);
    usual numeric;
    history integer;
    recent double precision[];
BEGIN
    SELECT p.* INTO proj FROM core.work_item w JOIN core.project p ON p.id = w.project_id WHERE w.id = NEW.item_id;
    INSERT INTO core.review_hint (project_id, item_id, revision_id, kind, message, detail)
    SELECT proj.id, NEW.item_id, NEW.id, 'class_descriptor_conflict', c.message,
           jsonb_build_object('rule_id', c.id, 'field', c.field, 'expect', c.expect, 'value', c.value,
                              'found', f.v)
      FROM core.consistency_rule c
      JOIN core.taxonomy_node n ON n.id = NEW.class_id
     CROSS JOIN LATERAL (SELECT NEW.content -> 'descriptors' -> c.field AS v) f
     WHERE c.project_id = proj.id AND c.active AND f.v IS NOT NULL AND f.v <> 'null'::jsonb
       AND n.path @> jsonb_build_array(jsonb_build_object('id', c.class_id))
       AND NOT CASE c.expect WHEN 'equals' THEN f.v = c.value
                             WHEN 'not_equals' THEN f.v <> c.value
                             WHEN 'contains' THEN f.v @> c.value
                             ELSE NOT f.v @> c.value END;
    -- a confident AI contradicted: neither class lies inside the other (a more specific answer agrees)
    SELECT s.payload -> 'classes' -> 0, s.model_name INTO top, model FROM core.work_item w
      JOIN core.ai_suggestion s ON s.image_id = w.image_id AND s.stage = 'classify'
     WHERE w.id = NEW.item_id ORDER BY s.id DESC LIMIT 1;
    IF top IS NOT NULL AND (top ->> 'probability')::numeric >= proj.ai_disagreement_min
       AND (top ->> 'node_id')::bigint <> NEW.class_id
       AND NOT EXISTS (SELECT 1 FROM core.taxonomy_node a, core.taxonomy_node b
                        WHERE a.id = NEW.class_id AND b.id = (top ->> 'node_id')::bigint
                          AND (a.path @> jsonb_build_array(jsonb_build_object('id', b.id))
                               OR b.path @> jsonb_build_array(jsonb_build_object('id', a.id)))) THEN
        INSERT INTO core.review_hint (project_id, item_id, revision_id, kind, message, detail)
        VALUES (proj.id, NEW.item_id, NEW.id, 'ai_disagreement',
                format('The AI (%s) was %s %% confident in %s (%s).', model,
                       round((top ->> 'probability')::numeric * 100), top ->> 'name', top ->> 'code'),
                jsonb_build_object('ai_class_id', (top ->> 'node_id')::bigint, 'ai_code', top ->> 'code',
                                   'probability', top -> 'probability', 'model', model));
    END IF;
    IF active_s IS NOT NULL THEN
        -- the usual pace: the median of the author's last 50 active times (core.annotator_pace, V34), then this
        -- one joins them; the row lock orders one author's concurrent submits
        SELECT p.recent INTO recent FROM core.annotator_pace p WHERE p.author_id = NEW.author_id FOR UPDATE;
        SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY x) INTO history, usual
          FROM unnest(coalesce(recent, '{}')) x;
        INSERT INTO core.annotator_pace AS p (author_id, recent)
        VALUES (NEW.author_id, ARRAY[active_s::double precision])
        ON CONFLICT (author_id) DO UPDATE
           SET recent = (p.recent || EXCLUDED.recent)[greatest(1, cardinality(p.recent) - 48):];
        IF history >= 10 AND active_s < usual * proj.fast_submit_ratio THEN
            INSERT INTO core.review_hint (project_id, item_id, revision_id, kind, message, detail)
            VALUES (proj.id, NEW.item_id, NEW.id, 'fast_submit',
                    format('Submitted after %s s; this annotator usually takes %s s.', round(active_s),
                           round(usual)),
                    jsonb_build_object('active_seconds', round(active_s, 1), 'median_seconds', round(usual, 1),
                                       'history', history));
        END IF;
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS raise_review_hints ON core.annotation_revision;
CREATE TRIGGER raise_review_hints AFTER INSERT ON core.annotation_revision
    FOR EACH ROW EXECUTE FUNCTION core.raise_review_hints();

CREATE OR REPLACE FUNCTION api.set_quality_thresholds(project_id bigint, agreement_min_shared integer,
                                                      fast_submit_ratio numeric, ai_disagreement_min numeric)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    p core.project;
BEGIN
    PERFORM core.caller('admin', project_id);
    IF agreement_min_shared IS NULL OR agreement_min_shared NOT BETWEEN 1 AND 100000 THEN
        PERFORM core.invalid('agreement_min_shared', 'must be between 1 and 100000');
    END IF;
    IF fast_submit_ratio IS NULL OR fast_submit_ratio <= 0 OR fast_submit_ratio >= 1 THEN
        PERFORM core.invalid('fast_submit_ratio', 'must be greater than 0 and less than 1');
    END IF;
    IF ai_disagreement_min IS NULL OR ai_disagreement_min <= 0 OR ai_disagreement_min > 1 THEN
        PERFORM core.invalid('ai_disagreement_min', 'must be greater than 0 and at most 1');
    END IF;
    SELECT * INTO p FROM core.project x WHERE x.id = set_quality_thresholds.project_id FOR UPDATE;
    UPDATE core.project x SET agreement_min_shared = set_quality_thresholds.agreement_min_shared,
                              fast_submit_ratio = set_quality_thresholds.fast_submit_ratio,
                              ai_disagreement_min = set_quality_thresholds.ai_disagreement_min
     WHERE x.id = p.id;
    PERFORM core.audit('set_quality_thresholds', 'project', p.id,
                       jsonb_build_object('agreement_min_shared', p.agreement_min_shared,
                                          'fast_submit_ratio', p.fast_submit_ratio,
                                          'ai_disagreement_min', p.ai_disagreement_min),
                       jsonb_build_object('agreement_min_shared', agreement_min_shared,
                                          'fast_submit_ratio', fast_submit_ratio,
                                          'ai_disagreement_min', ai_disagreement_min));
    RETURN jsonb_build_object('project_id', p.id, 'agreement_min_shared', agreement_min_shared,
                              'fast_submit_ratio', fast_submit_ratio, 'ai_disagreement_min', ai_disagreement_min);
END
$$;
COMMENT ON FUNCTION api.set_quality_thresholds(bigint, integer, numeric, numeric) IS
    'Admin: the project''s quality-control thresholds: fewest shared images for an annotator pair''s kappa to '
    'count, the share of an annotator''s median time below which a submit is flagged as fast, and the AI '
    'probability above which contradicting the AI raises a hint.';

GRANT EXECUTE ON FUNCTION api.set_quality_thresholds(bigint, integer, numeric, numeric) TO dl_admin;
GRANT EXECUTE ON FUNCTION api.set_gold(bigint, boolean),
                          api.create_consistency_rule(bigint, bigint, text, text, jsonb, text),
                          api.set_consistency_rule_active(bigint, boolean) TO dl_admin;

CREATE OR REPLACE FUNCTION api.set_quality_strata(project_id bigint, keys text[])
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    k text;
    before text[];
BEGIN
    PERFORM core.require_role('admin');
    PERFORM core.in_organization(core.require_project_role('admin', project_id));
    IF keys IS NULL OR cardinality(keys) > 5 THEN
        PERFORM core.invalid('keys', 'must list at most 5 descriptor keys');
    END IF;
    FOREACH k IN ARRAY keys LOOP
        IF NOT EXISTS (SELECT 1 FROM core.descriptor_field d
                        WHERE d.project_id = set_quality_strata.project_id AND d.key = k
                          AND d.kind IN ('single', 'boolean')) THEN
            PERFORM core.invalid('keys', format('%s is not a single-choice or yes/no descriptor of this project', k));
        END IF;
    END LOOP;
    IF cardinality(keys) <> (SELECT count(DISTINCT x) FROM unnest(keys) x) THEN
        PERFORM core.invalid('keys', 'lists a key twice');
    END IF;
    SELECT p.quality_strata INTO before FROM core.project p WHERE p.id = set_quality_strata.project_id FOR UPDATE;
    UPDATE core.project p SET quality_strata = keys WHERE p.id = set_quality_strata.project_id;
    PERFORM core.audit('set_quality_strata', 'project', project_id, jsonb_build_object('keys', before),
                       jsonb_build_object('keys', keys));
    RETURN jsonb_build_object('project_id', project_id, 'quality_strata', to_jsonb(keys));
END
$$;
COMMENT ON FUNCTION api.set_quality_strata(bigint, text[]) IS
    'Project admin: the descriptors (single-choice or yes/no keys, at most 5; default fitzpatrick and body_site) that '
    'metrics.quality_by_stratum breaks agreement, gold accuracy and AI agreement down by. Takes effect at the next '
    'metrics refresh.';
GRANT EXECUTE ON FUNCTION api.set_quality_strata(bigint, text[]) TO dl_admin;
