-- Several nodes on one database: node liveness, who does each session's background work, leases
-- on webhook deliveries, idempotency reservations by node, the shared per-key create limit, and
-- agent events too large for a NOTIFY payload.

-- Every running node renews alive_until (now() + the lease time) while it runs; a node that
-- stops renewing is dead once alive_until has passed, and its claims lapse with it.
CREATE TABLE nodes (
    id          text COLLATE "C" PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT now(),
    alive_until timestamptz NOT NULL
);

-- The node that polls and expires a session. Another node takes it over only when that node is
-- no longer alive.
CREATE TABLE session_owners (
    session_id text COLLATE "C" PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    node       text COLLATE "C" NOT NULL
);

-- A webhook delivery in flight is leased to one node until lease_until (database time).
ALTER TABLE outbox ADD COLUMN lease_until timestamptz;

-- The node holding an in-flight reservation: a duplicate waits for it while it is alive.
ALTER TABLE idempotency ADD COLUMN node text NOT NULL DEFAULT '';

-- Token buckets of the per-key create limit, shared by every node.
CREATE TABLE rate_buckets (
    key    text COLLATE "C" PRIMARY KEY,
    tokens double precision NOT NULL,
    at     timestamptz NOT NULL
);

-- Sealed agent events too large to travel in a NOTIFY payload; kept a few minutes.
CREATE TABLE agent_events (
    id     bigserial PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    sealed bytea NOT NULL
);
CREATE INDEX agent_events_by_at ON agent_events (at);
