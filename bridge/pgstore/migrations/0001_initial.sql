-- The first schema of paybridge's PostgreSQL store.
--
-- Every record is kept whole as a json document (json, not jsonb: it keeps the text exactly as
-- encoding/json wrote it, and a metadata value may hold U+0000, which jsonb rejects); the columns
-- beside it are copies of the fields that queries select and order on, written in the same
-- statement. Instants used for ordering are Unix nanoseconds (bigint): timestamptz keeps only
-- microseconds, and paybridge orders by the full instant. Ids sort bytewise (COLLATE "C"), as Go
-- compares strings.

CREATE TABLE sessions (
    id          text COLLATE "C" PRIMARY KEY,
    merchant_id text COLLATE "C" NOT NULL,
    mode        text COLLATE "C" NOT NULL,
    agent_id    text COLLATE "C" NOT NULL,
    status      text COLLATE "C" NOT NULL,
    open        boolean NOT NULL, -- Session.Open: pending, active, or closed and watched for a late payment
    created_ns  bigint NOT NULL,
    version     bigint NOT NULL,
    doc         json NOT NULL
);
-- ListSessions: newest first within a merchant and mode (read backwards), optionally one agent's
-- or one status's; the id breaks ties and is the paging cursor's second half.
CREATE INDEX sessions_by_created ON sessions (merchant_id, mode, created_ns, id);
CREATE INDEX sessions_by_agent ON sessions (merchant_id, mode, agent_id, created_ns, id);
CREATE INDEX sessions_by_status ON sessions (merchant_id, mode, status, created_ns, id);
-- OpenSessions: only the open ones, a small part of the table.
CREATE INDEX sessions_open ON sessions (id) WHERE open;

-- Every attempt's VCC session GUID belongs to one session (SessionByGUID, and the webhook).
CREATE TABLE session_guids (
    guid       text COLLATE "C" PRIMARY KEY,
    session_id text COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE
);
CREATE INDEX session_guids_by_session ON session_guids (session_id);

CREATE TABLE api_keys (
    id          text COLLATE "C" PRIMARY KEY,
    hash        text COLLATE "C" NOT NULL UNIQUE,
    merchant_id text COLLATE "C" NOT NULL,
    created_ns  bigint NOT NULL,
    doc         json NOT NULL
);
CREATE INDEX api_keys_by_merchant ON api_keys (merchant_id, created_ns, id);

-- Merchant webhooks, written in the transaction of the session transition they report.
CREATE TABLE outbox (
    id          text COLLATE "C" PRIMARY KEY,
    merchant_id text COLLATE "C" NOT NULL,
    pending     boolean NOT NULL,
    next_ns     bigint NOT NULL,
    doc         json NOT NULL
);
-- DueOutbox: pending messages by next attempt; delivered and abandoned ones drop out of it.
CREATE INDEX outbox_due ON outbox (next_ns, id) WHERE pending;

-- Idempotency keys hold NUL bytes (web joins the scope with them), so the key is bytea.
CREATE TABLE idempotency (
    key          bytea PRIMARY KEY,
    request_hash text NOT NULL,
    done         boolean NOT NULL,
    resource_id  text NOT NULL DEFAULT '',
    status       integer NOT NULL,
    body         bytea,
    created_ns   bigint NOT NULL,
    expires_ns   bigint NOT NULL
);
CREATE INDEX idempotency_by_expiry ON idempotency (expires_ns);
