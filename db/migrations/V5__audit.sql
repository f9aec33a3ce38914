-- The append-only audit trail.

CREATE TABLE audit.event (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_id    bigint,                 -- NULL for anonymous (a failed login with an unknown email) or the system
    action      text NOT NULL,
    entity      text NOT NULL,
    entity_id   bigint,
    before      jsonb,
    after       jsonb,
    request_id  text
);
CREATE INDEX event_entity_idx ON audit.event (entity, entity_id, id);
CREATE INDEX event_actor_idx ON audit.event (actor_id, at);
COMMENT ON TABLE audit.event IS 'Every state change, configuration change and login: who, what, before/after, request.';
