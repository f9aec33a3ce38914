-- Who may read what: claim helpers, grants, row-level security.
-- Writes never go through table privileges: they are SECURITY DEFINER api functions that check the caller.
-- Reads (item_detail, my_queue, search_taxonomy) run as the caller, so these policies are the wall they meet.
-- The helpers live here, not in a repeatable file, because the policies below depend on them.

-- claims() and uid() are read many times per request, so they are written to be inlined by the planner: no SET
-- clause (a function with one is never inlined), and every name qualified with pg_catalog instead, which is what
-- pinning search_path protects anyway.
CREATE FUNCTION auth.claims() RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::pg_catalog.jsonb,
                               '{}'::pg_catalog.jsonb)
$$;
COMMENT ON FUNCTION auth.claims() IS 'The request claims the HTTP layer set for this transaction ({} when none).';

CREATE FUNCTION auth.uid() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT nullif(nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::pg_catalog.jsonb
                             OPERATOR(pg_catalog.->>) 'sub', '')::pg_catalog.int8
$$;
COMMENT ON FUNCTION auth.uid() IS 'The calling user''s id from the claims, NULL when anonymous.';

CREATE FUNCTION auth.has_role(wanted auth.app_role) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT EXISTS (SELECT 1 FROM auth."user" u WHERE u.id = auth.uid() AND u.active AND wanted = ANY (u.roles))
$$;
COMMENT ON FUNCTION auth.has_role(auth.app_role) IS
    'True when the calling user is active and holds the role now (read from the database, not the token).';

CREATE FUNCTION auth.is_member(project bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT EXISTS (SELECT 1 FROM core.project_member m WHERE m.project_id = project AND m.user_id = auth.uid())
$$;
COMMENT ON FUNCTION auth.is_member(bigint) IS 'True when the calling user belongs to the project.';

CREATE FUNCTION auth.my_projects() RETURNS bigint[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT coalesce(array_agg(m.project_id), '{}') FROM core.project_member m WHERE m.user_id = auth.uid()
$$;
COMMENT ON FUNCTION auth.my_projects() IS
    'The projects of the calling user. Policies use (SELECT auth.my_projects()) so it runs once per query, '
    'not once per row.';

CREATE FUNCTION auth.has_reviewed(item bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT EXISTS (SELECT 1 FROM core.review r WHERE r.item_id = item AND r.reviewer_id = auth.uid())
$$;
COMMENT ON FUNCTION auth.has_reviewed(bigint) IS
    'True when the calling user reviewed the item (definer, so the item and review policies do not recurse).';

GRANT USAGE ON SCHEMA auth, core TO dl_annotator, dl_reviewer, dl_admin;
GRANT USAGE ON SCHEMA auth TO dl_anon, dl_analyst;
GRANT EXECUTE ON FUNCTION auth.claims(), auth.uid(), auth.has_role(auth.app_role), auth.is_member(bigint),
                          auth.my_projects(), auth.has_reviewed(bigint)
    TO dl_anon, dl_annotator, dl_reviewer, dl_admin, dl_analyst;
GRANT USAGE ON SCHEMA audit TO dl_admin;

GRANT SELECT ON core.project, core.project_member, core.image, core.taxonomy_node, core.descriptor_field,
                core.work_rule, core.work_item, core.item_transition, core.annotation_draft,
                core.annotation_revision, core.review, core.work_item_flag, core.description_template
    TO dl_annotator, dl_reviewer, dl_admin;
-- never the password hash, lockout counters or anything else about credentials
GRANT SELECT (id, email, display_name, roles, expertise, review_level, active, on_vacation)
    ON auth."user" TO dl_annotator, dl_reviewer, dl_admin;
GRANT SELECT ON audit.event TO dl_admin;

ALTER TABLE auth."user" ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.project ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.project_member ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.image ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.taxonomy_node ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.descriptor_field ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.work_rule ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.work_item ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.annotation_draft ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.annotation_revision ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.review ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.work_item_flag ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.description_template ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit.event ENABLE ROW LEVEL SECURITY;

-- Policies test the user's roles (auth.has_role), not the SQL role of the request, so a person who is both
-- annotator and reviewer sees the same rows whichever of their roles the call runs under.
-- (SELECT f()) makes the planner evaluate a helper once per query instead of once per row.

CREATE POLICY self_or_colleague ON auth."user" FOR SELECT TO dl_annotator, dl_reviewer, dl_admin USING (
    id = (SELECT auth.uid())
    OR (SELECT auth.has_role('admin'))
    OR EXISTS (SELECT 1 FROM core.project_member mine JOIN core.project_member theirs USING (project_id)
               WHERE mine.user_id = (SELECT auth.uid()) AND theirs.user_id = "user".id));

CREATE POLICY members ON core.project FOR SELECT TO dl_annotator, dl_reviewer, dl_admin
    USING (id = ANY ((SELECT auth.my_projects())::bigint[]));
CREATE POLICY members ON core.project_member FOR SELECT TO dl_annotator, dl_reviewer, dl_admin
    USING (project_id = ANY ((SELECT auth.my_projects())::bigint[]));
CREATE POLICY members ON core.image FOR SELECT TO dl_annotator, dl_reviewer, dl_admin
    USING (project_id = ANY ((SELECT auth.my_projects())::bigint[]));
CREATE POLICY members ON core.taxonomy_node FOR SELECT TO dl_annotator, dl_reviewer, dl_admin
    USING (project_id = ANY ((SELECT auth.my_projects())::bigint[]));
CREATE POLICY members ON core.descriptor_field FOR SELECT TO dl_annotator, dl_reviewer, dl_admin
    USING (project_id = ANY ((SELECT auth.my_projects())::bigint[]));
CREATE POLICY admins ON core.work_rule FOR SELECT TO dl_admin
    USING (project_id = ANY ((SELECT auth.my_projects())::bigint[]));
CREATE POLICY everyone ON core.item_transition FOR SELECT TO dl_annotator, dl_reviewer, dl_admin USING (true);
ALTER TABLE core.item_transition ENABLE ROW LEVEL SECURITY;

-- Annotators: the items they annotate or hold. Reviewers: items in review in their projects, and those they hold
-- or reviewed. Admins: every item of their projects.
CREATE POLICY visible_items ON core.work_item FOR SELECT TO dl_annotator, dl_reviewer, dl_admin USING (
    annotator_id = (SELECT auth.uid())
    OR assignee_id = (SELECT auth.uid())
    OR ((SELECT auth.has_role('reviewer')) AND project_id = ANY ((SELECT auth.my_projects())::bigint[])
        AND (status = 'review' OR auth.has_reviewed(id)))
    OR ((SELECT auth.has_role('admin')) AND project_id = ANY ((SELECT auth.my_projects())::bigint[])));

CREATE POLICY own_or_admin ON core.annotation_draft FOR SELECT TO dl_annotator, dl_reviewer, dl_admin USING (
    author_id = (SELECT auth.uid())
    OR ((SELECT auth.has_role('admin')) AND EXISTS (SELECT 1 FROM core.work_item w WHERE w.id = item_id)));

-- Revisions, reviews and flags follow their item (the subquery is itself filtered by visible_items).
CREATE POLICY item_visible ON core.annotation_revision FOR SELECT TO dl_annotator, dl_reviewer, dl_admin
    USING (EXISTS (SELECT 1 FROM core.work_item w WHERE w.id = item_id));
CREATE POLICY item_visible ON core.review FOR SELECT TO dl_annotator, dl_reviewer, dl_admin
    USING (EXISTS (SELECT 1 FROM core.work_item w WHERE w.id = item_id));
CREATE POLICY item_visible ON core.work_item_flag FOR SELECT TO dl_annotator, dl_reviewer, dl_admin
    USING (EXISTS (SELECT 1 FROM core.work_item w WHERE w.id = item_id));

CREATE POLICY own ON core.description_template FOR SELECT TO dl_annotator, dl_reviewer, dl_admin
    USING (owner_id = (SELECT auth.uid()));

CREATE POLICY admins ON audit.event FOR SELECT TO dl_admin USING ((SELECT auth.has_role('admin')));
