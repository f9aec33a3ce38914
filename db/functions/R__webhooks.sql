-- Webhooks: an organization admin registers an endpoint for events; an event writes one delivery row per
-- subscribed webhook in the transaction that caused it (nothing else: the request never waits for a partner's
-- server). The worker process sends deliveries signed with HMAC-SHA256, retries with backoff, records the answer.

CREATE OR REPLACE FUNCTION core.check_webhook_url(p_url text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = '' AS $$
-- https anywhere; plain http only to this machine's loopback (a receiver beside the app, and tests).
BEGIN
    IF p_url IS NULL OR length(p_url) > 2000
       OR NOT (p_url ~* '^https://[^/?#@\s]+(/[^\s#]*)?$'
               OR p_url ~* '^http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?(/[^\s#]*)?$') THEN
        PERFORM core.invalid('url', 'must be an https:// URL (http:// only to 127.0.0.1, localhost or [::1])');
    END IF;
    RETURN p_url;
END
$$;
COMMENT ON FUNCTION core.check_webhook_url(text) IS 'A webhook URL: https, or http to loopback only; else 22023.';

CREATE OR REPLACE FUNCTION core.webhook_json(p_webhook bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT jsonb_build_object('id', h.id, 'organization_id', h.organization_id, 'url', h.url,
                              'events', to_jsonb(h.events), 'active', h.active, 'created_at', h.created_at,
                              'deliveries', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                                 'id', d.id, 'event', d.event, 'status', d.status,
                                                 'attempts', d.attempts, 'last_status', d.last_status,
                                                 'last_error', d.last_error, 'created_at', d.created_at,
                                                 'delivered_at', d.delivered_at,
                                                 'next_attempt_at', d.next_attempt_at) ORDER BY d.id DESC), '[]')
                                               FROM (SELECT * FROM core.webhook_delivery x WHERE x.webhook_id = h.id
                                                      ORDER BY x.id DESC LIMIT 10) d))
      FROM core.webhook h WHERE h.id = p_webhook
$$;
COMMENT ON FUNCTION core.webhook_json(bigint) IS 'A webhook with its ten latest deliveries; never its secret.';

CREATE OR REPLACE FUNCTION api.create_webhook(organization_id bigint, url text, events text[])
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_role('admin');
    org bigint := core.own_admin_org(organization_id);
    secret text := encode(public.gen_random_bytes(32), 'hex');
    id bigint;
BEGIN
    IF events IS NULL OR cardinality(events) = 0
       OR NOT events <@ ARRAY['item.done', 'item.rejected', 'image.flagged', 'release.ready'] THEN
        PERFORM core.invalid('events', 'must be some of item.done, item.rejected, image.flagged, release.ready');
    END IF;
    INSERT INTO core.webhook (organization_id, url, events, secret, created_by)
    VALUES (org, core.check_webhook_url(url), ARRAY(SELECT DISTINCT unnest(events) ORDER BY 1), secret, me)
    RETURNING webhook.id INTO id;
    PERFORM core.audit('create_webhook', 'webhook', id, NULL, core.webhook_json(id));
    RETURN core.webhook_json(id) || jsonb_build_object('secret', secret);
END
$$;
COMMENT ON FUNCTION api.create_webhook(bigint, text, text[]) IS
    'Organization admin: sends your organization''s events (item.done, item.rejected, image.flagged, '
    'release.ready) to url as signed JSON POSTs. The answer''s `secret` (shown once) checks the signature: header '
    'X-DermLabel-Signature "t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>".';

CREATE OR REPLACE FUNCTION core.managed_webhook(p_webhook bigint) RETURNS core.webhook
LANGUAGE plpgsql SET search_path = '' AS $$
DECLARE
    h core.webhook;
BEGIN
    PERFORM core.require_signed_in();
    SELECT * INTO h FROM core.webhook x WHERE x.id = p_webhook FOR UPDATE;
    PERFORM core.require_own_org(h.organization_id, format('webhook %s not found', p_webhook));
    RETURN h;
END
$$;
COMMENT ON FUNCTION core.managed_webhook(bigint) IS 'Locks a webhook of an organization the caller administers.';

CREATE OR REPLACE FUNCTION api.list_webhooks(organization_id bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    org bigint;
BEGIN
    PERFORM core.require_role('admin');
    org := core.own_admin_org(organization_id);
    RETURN (SELECT coalesce(jsonb_agg(core.webhook_json(h.id) ORDER BY h.id), '[]')
              FROM core.webhook h WHERE h.organization_id = org);
END
$$;
COMMENT ON FUNCTION api.list_webhooks(bigint) IS
    'Organization admin: your webhooks with their ten latest deliveries (status, attempts, last answer).';

CREATE OR REPLACE FUNCTION api.set_webhook_active(webhook_id bigint, active boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    h core.webhook;
BEGIN
    PERFORM core.require_role('admin');
    h := core.managed_webhook(webhook_id);
    IF active IS NULL THEN
        PERFORM core.invalid('active', 'is required');
    END IF;
    UPDATE core.webhook x SET active = set_webhook_active.active WHERE x.id = h.id;
    PERFORM core.audit('set_webhook_active', 'webhook', h.id, NULL, jsonb_build_object('active', active));
    RETURN core.webhook_json(h.id);
END
$$;
COMMENT ON FUNCTION api.set_webhook_active(bigint, boolean) IS
    'Organization admin: pauses a webhook (no new deliveries) or resumes it.';

CREATE OR REPLACE FUNCTION core.enqueue_event(p_org bigint, p_event text, p_payload jsonb) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- One delivery per active webhook of the organization that wants the event; wakes the worker.
DECLARE
    n integer;
BEGIN
    INSERT INTO core.webhook_delivery (webhook_id, event, payload)
    SELECT h.id, p_event, p_payload || jsonb_build_object('event', p_event, 'organization_id', p_org,
                                                         'occurred_at', now())
      FROM core.webhook h WHERE h.organization_id = p_org AND h.active AND p_event = ANY (h.events);
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_notify('dl_webhook', '');
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION core.enqueue_event(bigint, text, jsonb) IS
    'Queues an event for the organization''s subscribed webhooks; returns how many deliveries it made.';

CREATE OR REPLACE FUNCTION api.test_webhook(webhook_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    h core.webhook;
    id bigint;
BEGIN
    PERFORM core.require_role('admin');
    h := core.managed_webhook(webhook_id);
    INSERT INTO core.webhook_delivery (webhook_id, event, payload)
    VALUES (h.id, 'ping', jsonb_build_object('event', 'ping', 'organization_id', h.organization_id,
                                              'occurred_at', now()))
    RETURNING webhook_delivery.id INTO id;
    PERFORM pg_notify('dl_webhook', '');
    RETURN jsonb_build_object('delivery_id', id, 'event', 'ping', 'status', 'pending');
END
$$;
COMMENT ON FUNCTION api.test_webhook(bigint) IS
    'Organization admin: sends a signed "ping" event to the webhook now; list_webhooks shows how it went.';

-- Events from the workflow: an item done or rejected, an image flagged. Ids only (and the partner's external id of
-- the case when there is one): the receiver reads what it may with its key.
CREATE OR REPLACE FUNCTION core.item_event() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
DECLARE
    org bigint;
BEGIN
    IF NEW.status IS NOT DISTINCT FROM OLD.status OR NEW.status NOT IN ('done', 'rejected') THEN
        RETURN NULL;
    END IF;
    SELECT p.organization_id INTO org FROM core.project p WHERE p.id = NEW.project_id;
    IF NOT EXISTS (SELECT 1 FROM core.webhook h WHERE h.organization_id = org AND h.active) THEN
        RETURN NULL;  -- the common case costs one indexed lookup
    END IF;
    PERFORM core.enqueue_event(org, CASE NEW.status WHEN 'done' THEN 'item.done' ELSE 'item.rejected' END,
        jsonb_build_object('project_id', NEW.project_id, 'item_id', NEW.id, 'image_id', NEW.image_id,
                           'status', NEW.status,
                           'external_id', (SELECT c.external_id FROM core.partner_case c WHERE c.image_id = NEW.image_id)));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION core.item_event() IS 'Trigger: queues item.done / item.rejected for the organization''s webhooks.';

CREATE OR REPLACE FUNCTION core.flag_event() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
DECLARE
    w core.work_item;
    org bigint;
BEGIN
    SELECT * INTO w FROM core.work_item x WHERE x.id = NEW.item_id;
    SELECT p.organization_id INTO org FROM core.project p WHERE p.id = w.project_id;
    IF EXISTS (SELECT 1 FROM core.webhook h WHERE h.organization_id = org AND h.active) THEN
        PERFORM core.enqueue_event(org, 'image.flagged',
            jsonb_build_object('project_id', w.project_id, 'item_id', w.id, 'image_id', w.image_id,
                               'flag_id', NEW.id, 'reason', NEW.reason,
                               'external_id', (SELECT c.external_id FROM core.partner_case c WHERE c.image_id = w.image_id)));
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION core.flag_event() IS 'Trigger: queues image.flagged for the organization''s webhooks.';

DROP TRIGGER IF EXISTS item_event ON core.work_item;
CREATE TRIGGER item_event AFTER UPDATE OF status ON core.work_item
    FOR EACH ROW EXECUTE FUNCTION core.item_event();
DROP TRIGGER IF EXISTS flag_event ON core.work_item_flag;
CREATE TRIGGER flag_event AFTER INSERT ON core.work_item_flag
    FOR EACH ROW EXECUTE FUNCTION core.flag_event();

-- The worker's side (role dl_ai_worker): claim due deliveries under a lease, report each answer.
CREATE OR REPLACE FUNCTION ops.claim_webhook_deliveries(p_limit integer, p_lease_seconds integer) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- Due pending deliveries and those whose sender's lease lapsed (it died), oldest first, FOR UPDATE SKIP LOCKED.
DECLARE
    out jsonb;
BEGIN
    WITH due AS (
        SELECT d.id FROM core.webhook_delivery d
         WHERE (d.status = 'pending' AND d.next_attempt_at <= now())
            OR (d.status = 'sending' AND d.lease_until < now())
         ORDER BY d.next_attempt_at, d.id LIMIT p_limit FOR UPDATE SKIP LOCKED),
    taken AS (
        UPDATE core.webhook_delivery d SET status = 'sending', attempts = d.attempts + 1,
               lease_until = now() + make_interval(secs => p_lease_seconds)
          FROM due WHERE d.id = due.id RETURNING d.*)
    SELECT coalesce(jsonb_agg(jsonb_build_object('id', t.id, 'event', t.event, 'url', h.url,
                                                 'secret', h.secret, 'attempts', t.attempts,
                                                 'body', (t.payload || jsonb_build_object('delivery_id', t.id))::text)
                              ORDER BY t.id), '[]')
      INTO out
      FROM taken t JOIN core.webhook h ON h.id = t.webhook_id;
    RETURN out;
END
$$;
COMMENT ON FUNCTION ops.claim_webhook_deliveries(integer, integer) IS
    'Worker: up to p_limit due deliveries (with url, secret and the exact body to sign), leased for p_lease_seconds.';

CREATE OR REPLACE FUNCTION ops.report_webhook_delivery(p_delivery bigint, p_status integer, p_error text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- 2xx: delivered. Anything else: again after 10 s, 20 s, 40 s ... capped at an hour; failed after 12 attempts.
DECLARE
    d core.webhook_delivery;
BEGIN
    SELECT * INTO d FROM core.webhook_delivery x WHERE x.id = p_delivery FOR UPDATE;
    IF NOT FOUND OR d.status <> 'sending' THEN
        RETURN 'ignored';
    END IF;
    IF p_status BETWEEN 200 AND 299 THEN
        UPDATE core.webhook_delivery x SET status = 'delivered', delivered_at = now(), last_status = p_status,
               last_error = NULL, lease_until = NULL WHERE x.id = d.id;
        RETURN 'delivered';
    END IF;
    UPDATE core.webhook_delivery x
       SET status = CASE WHEN d.attempts >= 12 THEN 'failed' ELSE 'pending' END::core.delivery_status,
           last_status = p_status, last_error = left(p_error, 500), lease_until = NULL,
           next_attempt_at = now() + least(interval '1 hour', interval '10 seconds' * power(2, d.attempts - 1))
     WHERE x.id = d.id;
    RETURN CASE WHEN d.attempts >= 12 THEN 'failed' ELSE 'retry' END;
END
$$;
COMMENT ON FUNCTION ops.report_webhook_delivery(bigint, integer, text) IS
    'Worker: the receiver''s HTTP status (NULL when it could not be reached) and error; SQL decides delivered, '
    'retry with backoff, or failed.';

GRANT USAGE ON SCHEMA ops TO dl_ai_worker;
GRANT EXECUTE ON FUNCTION ops.claim_webhook_deliveries(integer, integer),
                          ops.report_webhook_delivery(bigint, integer, text) TO dl_ai_worker;
GRANT EXECUTE ON FUNCTION api.create_webhook(bigint, text, text[]), api.list_webhooks(bigint),
                          api.set_webhook_active(bigint, boolean), api.test_webhook(bigint)
    TO dl_admin;
