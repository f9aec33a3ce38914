-- The claim helpers of V6 as PL/pgSQL, same signatures and meaning. A SQL function with a SET clause is never
-- inlined, so it was parsed and planned on every call (0.08-0.1 ms each, several per request); PL/pgSQL keeps its
-- plan for the session. auth.claims() and auth.uid() stay SQL: they have no SET clause and are inlined.

CREATE OR REPLACE FUNCTION auth.has_role(wanted auth.app_role) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM auth."user" u WHERE u.id = auth.uid() AND u.active AND wanted = ANY (u.roles));
END
$$;

CREATE OR REPLACE FUNCTION auth.is_member(project bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM core.project_member m WHERE m.project_id = is_member.project
                                                         AND m.user_id = auth.uid());
END
$$;

CREATE OR REPLACE FUNCTION auth.my_projects() RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    RETURN (SELECT coalesce(array_agg(m.project_id), '{}') FROM core.project_member m WHERE m.user_id = auth.uid());
END
$$;

CREATE OR REPLACE FUNCTION auth.has_reviewed(item bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM core.review r WHERE r.item_id = has_reviewed.item AND r.reviewer_id = auth.uid());
END
$$;
