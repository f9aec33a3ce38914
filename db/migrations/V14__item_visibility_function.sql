-- Who may see a work item, as one function: the row-level security policy and the guards of every item action
-- (core.lock_item) ask the same question, so an item you may not see answers exactly like one that does not
-- exist on every route, including the writes (an annotator guessing another's item id learns nothing).
-- LANGUAGE sql, STABLE, no SET clause: the planner inlines it into the policy, and the (SELECT ...) calls stay
-- one-per-query init plans as before.
CREATE FUNCTION auth.sees_item(annotator bigint, assignee bigint, project bigint, status core.item_status,
                               item bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(annotator = (SELECT auth.uid())
                    OR assignee = (SELECT auth.uid())
                    OR ((SELECT auth.has_role('reviewer')) AND project = ANY ((SELECT auth.my_projects())::bigint[])
                        AND (status = 'review' OR auth.has_reviewed(item)))
                    OR ((SELECT auth.has_role('admin')) AND project = ANY ((SELECT auth.my_projects())::bigint[])),
                    false)  -- a plain no, never NULL: callers negate it
$$;
COMMENT ON FUNCTION auth.sees_item(bigint, bigint, bigint, core.item_status, bigint) IS
    'Annotators see the items they annotate or hold; reviewers items in review in their projects and those they '
    'hold or reviewed; admins every item of their projects.';
GRANT EXECUTE ON FUNCTION auth.sees_item(bigint, bigint, bigint, core.item_status, bigint)
    TO dl_annotator, dl_reviewer, dl_admin;

DROP POLICY visible_items ON core.work_item;
CREATE POLICY visible_items ON core.work_item FOR SELECT TO dl_annotator, dl_reviewer, dl_admin
    USING (auth.sees_item(annotator_id, assignee_id, project_id, status, id));
