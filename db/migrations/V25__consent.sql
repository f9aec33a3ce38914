-- Consent: a project may require a consent reference on every image it receives (an upload or a partner's case);
-- withdrawing consent for a reference erases its images (core.erase_image).
ALTER TABLE core.project ADD COLUMN consent_required boolean NOT NULL DEFAULT false;
ALTER TABLE core.image ADD COLUMN consent_ref text CHECK (length(consent_ref) BETWEEN 1 AND 200);
CREATE INDEX image_consent_idx ON core.image (consent_ref) WHERE consent_ref IS NOT NULL;
COMMENT ON COLUMN core.image.consent_ref IS
    'The consent the image was given under (the hospital''s form or record number), when the project asks for one.';

-- the image registrations take the consent reference (their repeatables create the new signatures)
DROP FUNCTION IF EXISTS api.register_image(bigint, text, text, integer, integer, text, text, text, jsonb);
DROP FUNCTION IF EXISTS api.register_partner_image(bigint, text, text, text, integer, integer, text, jsonb);
DROP FUNCTION IF EXISTS api.register_partner_image(bigint, text, text, text, integer, integer, text, jsonb, text);
DROP FUNCTION IF EXISTS core.add_image(bigint, text, text, integer, integer, text, text, text, jsonb, bigint);
