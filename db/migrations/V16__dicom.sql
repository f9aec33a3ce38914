-- DICOM: each project's de-identification key, and the DICOMweb service (PACS) a project imports from.

CREATE TABLE core.project_deid (
    project_id       bigint PRIMARY KEY REFERENCES core.project (id),
    -- the key of the keyed hash that re-maps UIDs and pseudonymises patient IDs: the same source UID gets the same
    -- new UID in this project, and nobody without this value can go back
    secret           text NOT NULL CHECK (length(secret) >= 32),
    -- every date of a DICOM header is moved by this many days (PS3.15 Modified Dates option): intervals survive
    date_offset_days integer NOT NULL CHECK (date_offset_days BETWEEN -36500 AND -1),
    created_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE core.project_deid IS
    'Per-project DICOM de-identification key (UID/patient-ID keyed hash secret, date shift); created on first use.';

CREATE TABLE core.dicomweb_source (
    project_id  bigint PRIMARY KEY REFERENCES core.project (id),
    base_url    text NOT NULL CHECK (base_url ~ '^https?://[^\s/?#]+(/[^\s?#]*)?$' AND length(base_url) <= 1000),
    updated_by  bigint REFERENCES auth."user" (id),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE core.dicomweb_source IS
    'The DICOMweb base URL (QIDO-RS/WADO-RS) a project searches and imports series from.';

