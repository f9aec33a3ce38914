-- The taxonomy of conditions and the descriptor schema of a project.

CREATE OR REPLACE FUNCTION core.escape_like(s text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = '' AS $$
    SELECT replace(replace(replace(s, '\', '\\'), '%', '\%'), '_', '\_')
$$;

CREATE OR REPLACE FUNCTION core.taxonomy_derived() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    NEW.search_text := lower(concat_ws(' ', NEW.code, NEW.name, array_to_string(NEW.synonyms, ' '),
                                       NEW.icd10, NEW.snomed_ct));
    NEW.path := coalesce((SELECT p.path FROM core.taxonomy_node p WHERE p.id = NEW.parent_id), '[]'::jsonb)
                || jsonb_build_array(jsonb_build_object('id', NEW.id, 'code', NEW.code, 'name', NEW.name));
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION core.taxonomy_repath_children() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    -- touching the children re-runs their BEFORE trigger, which reads this node's new path; and so on down
    UPDATE core.taxonomy_node c SET parent_id = c.parent_id WHERE c.parent_id = NEW.id;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS search_text ON core.taxonomy_node;
DROP FUNCTION IF EXISTS core.taxonomy_search_text();
DROP TRIGGER IF EXISTS derived ON core.taxonomy_node;
CREATE TRIGGER derived BEFORE INSERT OR UPDATE ON core.taxonomy_node
    FOR EACH ROW EXECUTE FUNCTION core.taxonomy_derived();
DROP TRIGGER IF EXISTS repath_children ON core.taxonomy_node;
CREATE TRIGGER repath_children AFTER UPDATE ON core.taxonomy_node
    FOR EACH ROW WHEN (OLD.path IS DISTINCT FROM NEW.path) EXECUTE FUNCTION core.taxonomy_repath_children();

CREATE OR REPLACE FUNCTION core.node_json(n core.taxonomy_node) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = '' AS $$
    SELECT jsonb_build_object('id', n.id, 'code', n.code, 'name', n.name, 'parent_id', n.parent_id,
                              'synonyms', to_jsonb(n.synonyms), 'icd10', n.icd10, 'snomed_ct', n.snomed_ct,
                              'next_steps', n.next_steps, 'active', n.active, 'sort_order', n.sort_order)
$$;

CREATE OR REPLACE FUNCTION api.upsert_taxonomy_node(project_id bigint, code text, name text,
                                                    parent_code text DEFAULT NULL, synonyms text[] DEFAULT '{}',
                                                    icd10 text DEFAULT NULL, snomed_ct text DEFAULT NULL,
                                                    next_steps text DEFAULT '', active boolean DEFAULT true,
                                                    sort_order integer DEFAULT 0)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    parent bigint;
    before core.taxonomy_node;
    after core.taxonomy_node;
BEGIN
    PERFORM core.require_role('admin');
    PERFORM core.require_project_role('admin', project_id);
    IF parent_code IS NOT NULL THEN
        SELECT n.id INTO parent FROM core.taxonomy_node n
         WHERE n.project_id = upsert_taxonomy_node.project_id AND n.code = parent_code;
        IF parent IS NULL THEN
            PERFORM core.invalid('parent_code', format('no node %L in this project', parent_code));
        END IF;
    END IF;
    SELECT * INTO before FROM core.taxonomy_node n
     WHERE n.project_id = upsert_taxonomy_node.project_id AND n.code = upsert_taxonomy_node.code FOR UPDATE;
    IF before.id IS NOT NULL AND parent IS NOT NULL
       AND (SELECT p.path FROM core.taxonomy_node p WHERE p.id = parent) @> jsonb_build_array(
               jsonb_build_object('id', before.id)) THEN
        PERFORM core.invalid('parent_code', 'would make the node its own ancestor');
    END IF;
    INSERT INTO core.taxonomy_node AS n (project_id, parent_id, code, name, synonyms, icd10, snomed_ct,
                                         next_steps, active, sort_order)
    VALUES (project_id, parent, code, name, coalesce(synonyms, '{}'), icd10, snomed_ct,
            coalesce(next_steps, ''), coalesce(active, true), coalesce(sort_order, 0))
    ON CONFLICT ON CONSTRAINT taxonomy_node_project_id_code_key DO UPDATE
       SET parent_id = EXCLUDED.parent_id, name = EXCLUDED.name, synonyms = EXCLUDED.synonyms,
           icd10 = EXCLUDED.icd10, snomed_ct = EXCLUDED.snomed_ct, next_steps = EXCLUDED.next_steps,
           active = EXCLUDED.active, sort_order = EXCLUDED.sort_order
    RETURNING * INTO after;
    PERFORM core.audit('upsert_taxonomy_node', 'taxonomy_node', after.id,
                       CASE WHEN before.id IS NOT NULL THEN core.node_json(before) END, core.node_json(after));
    RETURN core.node_json(after);
END
$$;
COMMENT ON FUNCTION api.upsert_taxonomy_node(bigint, text, text, text, text[], text, text, text, boolean, integer) IS
    'Admin: creates or updates the taxonomy node with this code (parent by code, synonyms, ICD-10, SNOMED CT, '
    'next-steps text, active flag, sort order). Deactivate rather than delete: revisions refer to nodes.';

CREATE OR REPLACE FUNCTION api.search_taxonomy(project_id bigint, q text, max_results integer DEFAULT 20)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    needle text := lower(btrim(coalesce(q, '')));
    result jsonb;
BEGIN
    PERFORM core.require_member(project_id);
    IF max_results NOT BETWEEN 1 AND 200 THEN
        PERFORM core.invalid('max_results', 'must be between 1 and 200');
    END IF;
    IF needle = '' THEN
        RETURN '[]'::jsonb;
    END IF;
    -- Candidates: an exact code, and the nodes nearest by word similarity, read nearest-first from the GiST
    -- index (<<->), so a query never scores the whole tree. Then: exact code, name prefix, similarity.
    WITH candidates AS (
        SELECT n.id FROM core.taxonomy_node n
         WHERE n.project_id = search_taxonomy.project_id AND lower(n.code) = needle AND n.active
        UNION
        (SELECT n.id FROM core.taxonomy_node n
          WHERE n.project_id = search_taxonomy.project_id AND n.active
          ORDER BY needle OPERATOR(public.<<->) n.search_text
          LIMIT max_results * 3)
    ), ranked AS (
        SELECT n AS node, lower(n.code) = needle AS rank_exact,
               lower(n.name) LIKE core.escape_like(needle) || '%' AS rank_prefix,
               public.word_similarity(needle, n.search_text) AS score
          FROM candidates c JOIN core.taxonomy_node n ON n.id = c.id
    )
    SELECT coalesce(jsonb_agg(core.node_json(r.node) || jsonb_build_object('path', (r.node).path,
                                                                           'score', round(r.score::numeric, 3))
                              ORDER BY r.rank_exact DESC, r.rank_prefix DESC, r.score DESC, (r.node).sort_order,
                                       (r.node).name), '[]')
      INTO result
      FROM (SELECT * FROM ranked
             WHERE rank_exact OR (node).search_text LIKE '%' || core.escape_like(needle) || '%' OR score >= 0.5
             ORDER BY rank_exact DESC, rank_prefix DESC, score DESC, (node).sort_order, (node).name
             LIMIT max_results) r;
    RETURN result;
END
$$;
COMMENT ON FUNCTION api.search_taxonomy(bigint, text, integer) IS
    'Type-ahead over the project''s active conditions by name, synonym, code, ICD-10 or SNOMED CT; ranked (exact '
    'code, then name prefix, then trigram word similarity); each hit carries its path from the root.';


CREATE OR REPLACE FUNCTION core.field_json(f core.descriptor_field) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = '' AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object('key', f.key, 'label', f.label, 'kind', f.kind,
                             'options', to_jsonb(f.options), 'min', f.min_value, 'max', f.max_value,
                             'unit', f.unit, 'required', f.required))
$$;

CREATE OR REPLACE FUNCTION api.set_descriptor_schema(project_id bigint, fields jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    f jsonb;
    i integer := 0;
    before jsonb := api.descriptor_schema(project_id);
BEGIN
    PERFORM core.require_role('admin');
    PERFORM core.require_project_role('admin', project_id);
    IF jsonb_typeof(fields) IS DISTINCT FROM 'array' THEN
        PERFORM core.invalid('fields', 'must be a list of descriptor definitions');
    END IF;
    DELETE FROM core.descriptor_field d WHERE d.project_id = set_descriptor_schema.project_id;
    FOR f IN SELECT jsonb_array_elements(fields) LOOP
        IF jsonb_typeof(f) <> 'object' OR f ->> 'key' IS NULL OR f ->> 'kind' IS NULL THEN
            PERFORM core.invalid(format('fields[%s]', i), 'needs at least key and kind');
        END IF;
        IF (f ->> 'kind') NOT IN ('single', 'multi', 'number', 'text', 'boolean') THEN
            PERFORM core.invalid(format('fields[%s].kind', i), 'must be single, multi, number, text or boolean');
        END IF;
        INSERT INTO core.descriptor_field (project_id, key, label, kind, options, min_value, max_value, unit,
                                           required, sort_order)
        VALUES (project_id, f ->> 'key', coalesce(f ->> 'label', f ->> 'key'), (f ->> 'kind')::core.descriptor_kind,
                CASE WHEN f ? 'options' THEN ARRAY(SELECT jsonb_array_elements_text(f -> 'options')) END,
                (f ->> 'min')::numeric, (f ->> 'max')::numeric, f ->> 'unit',
                coalesce((f ->> 'required')::boolean, false), i);
        i := i + 1;
    END LOOP;
    PERFORM core.audit('set_descriptor_schema', 'project', project_id, before, api.descriptor_schema(project_id));
    RETURN api.descriptor_schema(project_id);
END
$$;
COMMENT ON FUNCTION api.set_descriptor_schema(bigint, jsonb) IS
    'Admin: replaces the project''s descriptor schema: a list of {key, label, kind (single|multi|number|text|'
    'boolean), options, min, max, unit, required}. Submitted annotations are checked against it.';

CREATE OR REPLACE FUNCTION api.descriptor_schema(project_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = '' AS $$
BEGIN
    PERFORM core.require_member(project_id);
    RETURN (SELECT coalesce(jsonb_agg(core.field_json(d) ORDER BY d.sort_order, d.key), '[]')
              FROM core.descriptor_field d WHERE d.project_id = descriptor_schema.project_id);
END
$$;
COMMENT ON FUNCTION api.descriptor_schema(bigint) IS
    'The project''s descriptor schema, in form order, for building the descriptors form.';

CREATE OR REPLACE FUNCTION api.taxonomy_tree(project_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = '' AS $$
BEGIN
    PERFORM core.require_member(project_id);
    RETURN (SELECT coalesce(jsonb_agg(core.node_json(n) ORDER BY n.parent_id NULLS FIRST, n.sort_order, n.name), '[]')
              FROM core.taxonomy_node n WHERE n.project_id = taxonomy_tree.project_id);
END
$$;
COMMENT ON FUNCTION api.taxonomy_tree(bigint) IS
    'Every node of the project''s taxonomy (flat, with parent_id) for the collapsible tree.';

GRANT EXECUTE ON FUNCTION core.escape_like(text), core.node_json(core.taxonomy_node),
                          core.field_json(core.descriptor_field), core.require_member(bigint),
                          core.invalid(text, text), core.require_role(auth.app_role),
                          core.require_signed_in()
    TO dl_annotator, dl_reviewer, dl_admin;
GRANT EXECUTE ON FUNCTION api.upsert_taxonomy_node(bigint, text, text, text, text[], text, text, text, boolean, integer),
                          api.set_descriptor_schema(bigint, jsonb)
    TO dl_admin;
GRANT EXECUTE ON FUNCTION api.search_taxonomy(bigint, text, integer), api.descriptor_schema(bigint),
                          api.taxonomy_tree(bigint)
    TO dl_annotator, dl_reviewer, dl_admin;
