-- Consent: a project may require a consent reference on every image it receives; withdrawing a consent erases
-- every image given under it, in every project of the organization.

CREATE OR REPLACE FUNCTION api.set_consent_required(project_id bigint, required boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    PERFORM core.require_role('admin');
    PERFORM core.require_project_role('admin', project_id);
    IF required IS NULL THEN
        PERFORM core.invalid('required', 'is required');
    END IF;
    UPDATE core.project p SET consent_required = set_consent_required.required WHERE p.id = project_id;
    PERFORM core.audit('set_consent_required', 'project', project_id, NULL, jsonb_build_object('required', required));
    RETURN jsonb_build_object('project_id', project_id, 'consent_required', required);
END
$$;
COMMENT ON FUNCTION api.set_consent_required(bigint, boolean) IS
    'Project admin: from now on every image the project receives (upload or partner case) must carry a consent '
    'reference (form field consent_ref); without one it is refused with 400 and nothing is stored.';

CREATE OR REPLACE FUNCTION api.withdraw_consent(organization_id bigint, consent_ref text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    org bigint;
    img bigint;
    erased bigint[] := '{}';
BEGIN
    PERFORM core.require_role('admin');
    org := core.own_admin_org(organization_id);
    IF consent_ref IS NULL OR length(btrim(consent_ref)) = 0 THEN
        PERFORM core.invalid('consent_ref', 'is required');
    END IF;
    FOR img IN SELECT i.id FROM core.image i JOIN core.project p ON p.id = i.project_id
                WHERE p.organization_id = org AND i.consent_ref = btrim(withdraw_consent.consent_ref)
                  AND i.erased_at IS NULL ORDER BY i.id FOR UPDATE OF i LOOP
        PERFORM core.erase_image(img, 'consent_withdrawn');
        erased := erased || img;
    END LOOP;
    -- the reference itself is kept nowhere after this: the audit says how many images went, not which consent
    PERFORM core.audit('withdraw_consent', 'organization', org, NULL,
                       jsonb_build_object('images_erased', cardinality(erased)));
    RETURN jsonb_build_object('organization_id', org, 'images_erased', cardinality(erased),
                              'image_ids', to_jsonb(erased));
END
$$;
COMMENT ON FUNCTION api.withdraw_consent(bigint, text) IS
    'Organization admin: consent with this reference was withdrawn - every image given under it, in every project '
    'of your organization, is erased (as api.erase_image). Returns how many and which.';

GRANT EXECUTE ON FUNCTION api.set_consent_required(bigint, boolean), api.withdraw_consent(bigint, text) TO dl_admin;
