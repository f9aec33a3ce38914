-- What the admin page reads in one call: a project's settings, people and their roles there, rules and queue.

CREATE OR REPLACE FUNCTION api.project_overview(project_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    p core.project;
BEGIN
    PERFORM core.caller('admin', project_id);
    SELECT * INTO p FROM core.project x WHERE x.id = project_overview.project_id;
    RETURN core.project_json(p.id) || jsonb_build_object(
        'red_flag_threshold', p.red_flag_threshold, 'red_flag_priority', p.red_flag_priority,
        'agreement_min_shared', p.agreement_min_shared, 'fast_submit_ratio', p.fast_submit_ratio,
        'ai_disagreement_min', p.ai_disagreement_min, 'organization_id', p.organization_id,
        'members', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'id', u.id, 'email', u.email, 'display_name', u.display_name,
                        'roles', array_remove(ARRAY[CASE WHEN m.annotator THEN 'annotator' END,
                                                    CASE WHEN m.reviewer THEN 'reviewer' END,
                                                    CASE WHEN m.admin THEN 'admin' END], NULL),
                        'expertise', m.expertise, 'review_level', m.review_level, 'active', u.active,
                        'on_vacation', u.on_vacation, 'manageable', core.may_manage_user(u.id),
                        'holding', (SELECT count(*) FROM core.work_item w WHERE w.project_id = p.id
                                                                             AND w.assignee_id = u.id),
                        'waiting_for_edits', (SELECT count(*) FROM core.work_item w
                                               WHERE w.project_id = p.id AND w.annotator_id = u.id
                                                 AND w.status = 'edits_requested'))
                        ORDER BY u.display_name), '[]')
                      FROM core.project_member m JOIN auth."user" u ON u.id = m.user_id WHERE m.project_id = p.id),
        'rules', (SELECT coalesce(jsonb_agg(core.rule_json(r.id) ORDER BY r.priority DESC, r.id), '[]')
                    FROM core.work_rule r WHERE r.project_id = p.id),
        'queue', (SELECT coalesce(jsonb_agg(jsonb_build_object('status', q.status, 'items', q.n, 'oldest', q.oldest)
                                            ORDER BY q.status), '[]')
                    FROM (SELECT w.status, count(*) AS n,
                                 min(CASE w.status WHEN 'new' THEN w.created_at WHEN 'review' THEN w.submitted_at
                                                   ELSE w.updated_at END) AS oldest
                            FROM core.work_item w WHERE w.project_id = p.id GROUP BY w.status) q),
        'images', (SELECT count(*) FROM core.image i WHERE i.project_id = p.id),
        'open_flags', (SELECT count(*) FROM core.work_item_flag f JOIN core.work_item w ON w.id = f.item_id
                        WHERE w.project_id = p.id AND f.resolved_at IS NULL));
END
$$;
COMMENT ON FUNCTION api.project_overview(bigint) IS
    'Admin: a project at a glance: settings, members (with items they hold and items waiting for their edits), '
    'work rules with item counts, the queue by status with the oldest item''s time, images and open flags.';

GRANT EXECUTE ON FUNCTION api.project_overview(bigint) TO dl_admin;
