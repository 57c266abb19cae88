-- Events (issue 13): every outbox message is the merchant's event record, listed by merchant and
-- mode, newest first (GET /v1/events), optionally of one type or one session, purged after the
-- events retention; and the pending ones are counted for the outbox metrics.

ALTER TABLE outbox ADD COLUMN mode text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN session_id text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN type text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN created_ns bigint NOT NULL DEFAULT 0;

-- Messages written before: type and creation from the document (createdAt to the microsecond,
-- all timestamptz keeps), mode and session from the payload (base64 in the document) where it
-- reads as JSON; one that does not stays unlisted, and is still delivered and purged.
UPDATE outbox SET type = coalesce(doc->>'type', ''),
    created_ns = coalesce((extract(epoch FROM (doc->>'createdAt')::timestamptz) * 1000000)::bigint * 1000, 0);
DO $$
DECLARE
    r record;
    p json;
BEGIN
    FOR r IN SELECT id, doc FROM outbox WHERE mode = '' LOOP
        BEGIN
            p := convert_from(decode(r.doc->>'payload', 'base64'), 'UTF8')::json;
            UPDATE outbox SET
                mode = CASE (p->>'livemode')::boolean WHEN true THEN 'live' WHEN false THEN 'test' ELSE '' END,
                session_id = coalesce(p->'data'->>'id', '')
            WHERE id = r.id;
        EXCEPTION WHEN others THEN
            NULL; -- not JSON: left unlisted
        END;
    END LOOP;
END
$$;

-- ListEvents: newest first within a merchant and mode (read backwards), optionally one type's or
-- one session's; the id breaks ties and is the paging cursor's second half.
CREATE INDEX outbox_events ON outbox (merchant_id, mode, created_ns, id);
CREATE INDEX outbox_events_by_type ON outbox (merchant_id, mode, type, created_ns, id);
CREATE INDEX outbox_events_by_session ON outbox (merchant_id, mode, session_id, created_ns, id);
-- PurgeEvents: the oldest of those done with (partial, so a page of events is never read from it).
CREATE INDEX outbox_done_by_created ON outbox (created_ns) WHERE NOT pending;
-- OutboxPending: count and oldest of the pending ones, from the index alone.
CREATE INDEX outbox_pending_created ON outbox (created_ns) WHERE pending;
