-- Personal templates: an annotator's snippets for the description, a reviewer's for review comments.

CREATE OR REPLACE FUNCTION core.template_owner() RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
DECLARE
    me bigint := core.require_signed_in();
BEGIN
    IF NOT (auth.has_role('annotator') OR auth.has_role('reviewer')) THEN
        RAISE EXCEPTION 'permission denied: templates are for annotators and reviewers' USING ERRCODE = '42501';
    END IF;
    RETURN me;
END
$$;

CREATE OR REPLACE FUNCTION api.save_template(name text, body text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.template_owner();
    t core.description_template;
BEGIN
    IF length(btrim(coalesce(name, ''))) = 0 OR length(name) > 200 THEN
        PERFORM core.invalid('name', 'between 1 and 200 characters');
    END IF;
    IF body IS NULL OR length(body) > 20000 THEN
        PERFORM core.invalid('body', 'at most 20000 characters');
    END IF;
    INSERT INTO core.description_template AS d (owner_id, name, body) VALUES (me, btrim(save_template.name), body)
    ON CONFLICT ON CONSTRAINT description_template_owner_id_name_key
    DO UPDATE SET body = EXCLUDED.body, updated_at = now()
    RETURNING * INTO t;
    RETURN jsonb_build_object('id', t.id, 'name', t.name, 'body', t.body, 'updated_at', t.updated_at);
END
$$;
COMMENT ON FUNCTION api.save_template(text, text) IS
    'Annotator or reviewer: saves a personal template (description or review comment) under a name (replacing one of the same name).';

CREATE OR REPLACE FUNCTION api.my_templates()
RETURNS jsonb
LANGUAGE sql STABLE SECURITY INVOKER SET search_path = '' AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object('id', t.id, 'name', t.name, 'body', t.body,
                                                 'updated_at', t.updated_at) ORDER BY t.name), '[]')
      FROM core.description_template t WHERE t.owner_id = auth.uid()
$$;
COMMENT ON FUNCTION api.my_templates() IS 'Your description templates, by name.';

CREATE OR REPLACE FUNCTION api.delete_template(name text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.template_owner();
BEGIN
    DELETE FROM core.description_template t WHERE t.owner_id = me AND t.name = delete_template.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'template % not found', delete_template.name USING ERRCODE = 'P0002';
    END IF;
    RETURN jsonb_build_object('deleted', delete_template.name);
END
$$;
COMMENT ON FUNCTION api.delete_template(text) IS 'Annotator or reviewer: deletes one of your templates.';

GRANT EXECUTE ON FUNCTION core.template_owner() TO dl_annotator, dl_reviewer;
GRANT EXECUTE ON FUNCTION api.save_template(text, text), api.my_templates(), api.delete_template(text)
    TO dl_annotator, dl_reviewer;
