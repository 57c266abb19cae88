package bridge

import (
	"context"
	"encoding/json"
	"time"
)

// Store is paybridge's durable state. boltstore is the single-node default; every
// implementation passes the conformance suite in bridge/storetest. Methods return ErrNotFound and
// ErrConflict (possibly wrapped) for those conditions and other errors for storage failures.
type Store interface {
	SessionStore
	KeyStore
	OutboxStore
	IdempotencyStore
	// Ping reports whether the store can serve requests, for /readyz.
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}

// SessionStore holds sessions and their attempts.
type SessionStore interface {
	// CreateSession stores a new session; ErrConflict if its id exists.
	CreateSession(ctx context.Context, s *Session) error
	// Session returns the session with id, or ErrNotFound.
	Session(ctx context.Context, id string) (*Session, error)
	// SessionByGUID returns the session one of whose attempts has VCC session GUID guid.
	SessionByGUID(ctx context.Context, guid string) (*Session, error)
	// UpdateSession reads the session, calls fn on a private copy and, if fn returns nil, writes
	// the copy (Version bumped) together with every message fn added to the outbox, in one
	// transaction; so a transition and its webhook are stored together or not at all. An error
	// from fn is returned unchanged and nothing is written.
	UpdateSession(ctx context.Context, id string, fn func(s *Session, out *Outbox) error) (*Session, error)
	// ListSessions returns the sessions matching f, newest first.
	ListSessions(ctx context.Context, f SessionFilter) ([]*Session, error)
	// OpenSessions returns every session whose Open reports true (pending, active, or closed and
	// still watched for a late payment), in any merchant and mode.
	OpenSessions(ctx context.Context) ([]*Session, error)
}

// Page sizes of SessionFilter.Limit and EventFilter.Limit.
const (
	DefaultListLimit = 10
	MaxListLimit     = 100
)

// ListLimit is the page size a filter's Limit asks for: DefaultListLimit for 0 (or less), at
// most MaxListLimit. Every store lists by it.
func ListLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultListLimit
	case n > MaxListLimit:
		return MaxListLimit
	}
	return n
}

// SessionFilter selects sessions for ListSessions. MerchantID and Mode are required.
type SessionFilter struct {
	MerchantID    string
	Mode          Mode
	AgentID       string // optional
	Status        Status // optional
	Limit         int    // 1..100; 0 means 10
	StartingAfter string // a session id: return those created before it
}

// KeyStore holds API keys, by their hash.
type KeyStore interface {
	// CreateAPIKey stores a new key; ErrConflict if its id or hash exists.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// APIKey returns the key with id, or ErrNotFound.
	APIKey(ctx context.Context, id string) (*APIKey, error)
	// APIKeyByHash returns the key whose Hash is hash, or ErrNotFound.
	APIKeyByHash(ctx context.Context, hash string) (*APIKey, error)
	// UpdateAPIKey changes a key under fn like UpdateSession does.
	UpdateAPIKey(ctx context.Context, id string, fn func(k *APIKey) error) (*APIKey, error)
	// ListAPIKeys returns a merchant's keys, oldest first.
	ListAPIKeys(ctx context.Context, merchantID string) ([]*APIKey, error)
	// AgentTokenEpoch returns agent's token epoch: 0 until its tokens are first revoked.
	AgentTokenEpoch(ctx context.Context, agent AgentRef) (int64, error)
	// RevokeAgentTokens moves agent's token epoch on by one, atomically (concurrent calls each
	// move it), records at as the revocation's time, and returns the new record: every token
	// minted before it carries a lower epoch and is void.
	RevokeAgentTokens(ctx context.Context, agent AgentRef, at time.Time) (*AgentTokenRevocation, error)
}

// AgentTokenRevocation is the durable record that voids an agent's tokens: those minted with an
// epoch below Epoch no longer work, on any node, after any restart. An epoch rather than a time,
// so that nodes' clocks need not agree and a token minted just after a revocation is good.
type AgentTokenRevocation struct {
	Agent     AgentRef  `json:"agent"`
	Epoch     int64     `json:"epoch"`
	RevokedAt time.Time `json:"revokedAt"` // of the latest revocation
}

// OutboxMessage is one merchant event: the webhook delivery waiting to happen (or done), written
// in the same transaction as the session transition it reports, and kept as the merchant's event
// record (GET /v1/events) for the events retention. A merchant without a webhook URL still gets
// the record, marked NoEndpoint and never pending.
type OutboxMessage struct {
	ID         string    `json:"id"` // the event id, vp_evt_...; receivers deduplicate on it
	MerchantID string    `json:"merchantId"`
	Mode       Mode      `json:"mode,omitempty"`      // empty in records written before events were listed; see Fill
	SessionID  string    `json:"sessionId,omitempty"` // the session the event reports
	Type       EventType `json:"type"`
	Payload    []byte    `json:"payload"` // the exact body that is signed and sent
	CreatedAt  time.Time `json:"createdAt"`
	// Attempts counts every delivery attempt made; Deliveries keeps the last MaxDeliveryLog.
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"nextAttemptAt"`
	DeliveredAt   time.Time `json:"deliveredAt,omitzero"`
	AbandonedAt   time.Time `json:"abandonedAt,omitzero"` // gave up after the retry window
	LastError     string    `json:"lastError,omitempty"`
	// NoEndpoint records an event of a merchant that had no webhook URL when it happened: kept,
	// listed and resendable, but never pending.
	NoEndpoint bool `json:"noEndpoint,omitempty"`
	// RetryFrom starts the current retry window when a resend opened a fresh one (zero: CreatedAt),
	// and RetryBase is Attempts at that moment, so the backoff starts again from its first step.
	RetryFrom  time.Time         `json:"retryFrom,omitzero"`
	RetryBase  int               `json:"retryBase,omitempty"`
	Deliveries []DeliveryAttempt `json:"deliveries,omitempty"` // oldest first
}

// MaxDeliveryLog is how many delivery attempts a message keeps (the most recent).
const MaxDeliveryLog = 20

// DeliveryAttempt is one POST of a message to its merchant's endpoint, as the dispatcher saw it.
type DeliveryAttempt struct {
	At       time.Time     `json:"at"`
	Status   int           `json:"status"`          // the receiver's HTTP status; 0 when none came
	Error    string        `json:"error,omitempty"` // as in LastError: redacted, no URL or secret
	Duration time.Duration `json:"duration"`
}

// DeliveryStatus is where an event's webhook delivery stands.
type DeliveryStatus string

// Delivery statuses of an event.
const (
	DeliveryPending    DeliveryStatus = "pending"
	DeliveryDelivered  DeliveryStatus = "delivered"
	DeliveryAbandoned  DeliveryStatus = "abandoned"
	DeliveryNoEndpoint DeliveryStatus = "no_endpoint"
)

// Pending reports whether the message still needs delivering.
func (m *OutboxMessage) Pending() bool {
	return m.DeliveredAt.IsZero() && m.AbandonedAt.IsZero() && !m.NoEndpoint
}

// DeliveryStatus reports where m's delivery stands.
func (m *OutboxMessage) DeliveryStatus() DeliveryStatus {
	switch {
	case !m.DeliveredAt.IsZero():
		return DeliveryDelivered
	case !m.AbandonedAt.IsZero():
		return DeliveryAbandoned
	case m.NoEndpoint:
		return DeliveryNoEndpoint
	}
	return DeliveryPending
}

// RecordDelivery appends a to Deliveries, keeping the last MaxDeliveryLog.
func (m *OutboxMessage) RecordDelivery(a DeliveryAttempt) {
	m.Deliveries = append(m.Deliveries, a)
	if n := len(m.Deliveries) - MaxDeliveryLog; n > 0 {
		m.Deliveries = append([]DeliveryAttempt(nil), m.Deliveries[n:]...)
	}
}

// RetryWindowStart is when m's current retry window began: its last resend, or its creation.
func (m *OutboxMessage) RetryWindowStart() time.Time {
	if !m.RetryFrom.IsZero() {
		return m.RetryFrom
	}
	return m.CreatedAt
}

// Fill completes a message written before messages carried Mode and SessionID, from its
// payload (livemode and data.id); a payload it cannot read leaves them empty.
func (m *OutboxMessage) Fill() {
	if m.Mode != "" && m.SessionID != "" {
		return
	}
	var p struct {
		Livemode *bool `json:"livemode"`
		Data     struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if json.Unmarshal(m.Payload, &p) != nil {
		return
	}
	if m.Mode == "" && p.Livemode != nil {
		m.Mode = ModeTest
		if *p.Livemode {
			m.Mode = ModeLive
		}
	}
	if m.SessionID == "" {
		m.SessionID = p.Data.ID
	}
}

// Outbox collects the messages an UpdateSession writes with its session.
type Outbox struct{ messages []*OutboxMessage }

// Add queues m to be written with the update.
func (o *Outbox) Add(m *OutboxMessage) { o.messages = append(o.messages, m) }

// Messages returns what was added.
func (o *Outbox) Messages() []*OutboxMessage { return o.messages }

// OutboxStore holds the merchant events and their webhook deliveries.
type OutboxStore interface {
	// DueOutbox returns up to limit pending messages whose NextAttemptAt is not after now,
	// earliest first.
	DueOutbox(ctx context.Context, now time.Time, limit int) ([]*OutboxMessage, error)
	// OutboxMessage returns the message with id, or ErrNotFound.
	OutboxMessage(ctx context.Context, id string) (*OutboxMessage, error)
	// UpdateOutbox changes a message under fn like UpdateSession does.
	UpdateOutbox(ctx context.Context, id string, fn func(m *OutboxMessage) error) (*OutboxMessage, error)
	// ListEvents returns the messages matching f, newest first (CreatedAt, then id, descending),
	// through an index on merchant and mode: no scan of other merchants' events. ErrNotFound if
	// f.StartingAfter is not a message of f's merchant and mode.
	ListEvents(ctx context.Context, f EventFilter) ([]*OutboxMessage, error)
	// PurgeEvents deletes the messages created before t that are no longer pending, and returns
	// how many. A pending one stays until its delivery ends, however old.
	PurgeEvents(ctx context.Context, t time.Time) (int, error)
	// OutboxPending returns how many messages are pending and the oldest CreatedAt among them
	// (zero when none), for the outbox metrics.
	OutboxPending(ctx context.Context) (count int, oldest time.Time, err error)
}

// EventFilter selects events for ListEvents. MerchantID and Mode are required.
type EventFilter struct {
	MerchantID    string
	Mode          Mode
	Type          EventType // optional
	SessionID     string    // optional
	Limit         int       // 1..100; 0 means 10
	StartingAfter string    // an event id: return those created before it
}

// IdempotencyRecord remembers the first response to a request sent with an Idempotency-Key.
type IdempotencyRecord struct {
	Key         string `json:"key"`         // scope (merchant, mode) + the client's key
	RequestHash string `json:"requestHash"` // hash of method, path and body
	Done        bool   `json:"done"`        // false while the first request is in flight
	// ResourceID is the id the first request gives what it creates (a session id), fixed
	// before it calls anyone: a retry after the first request's process died finds the
	// session it made, whatever became of it, instead of making a second one.
	ResourceID string `json:"resourceId,omitempty"`
	// Node is the node that holds the reservation, on a store several nodes share (set by the
	// store; see NodeDirectory); empty on a single-node store.
	Node      string    `json:"node,omitempty"`
	Status    int       `json:"status,omitempty"`
	Body      []byte    `json:"body,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// IdempotencyStore holds idempotency records.
type IdempotencyStore interface {
	// ReserveIdempotency stores rec if no unexpired record has its key and returns (nil, nil);
	// otherwise it stores nothing and returns the existing record.
	ReserveIdempotency(ctx context.Context, rec *IdempotencyRecord) (*IdempotencyRecord, error)
	// CompleteIdempotency records the response of the request that reserved key.
	CompleteIdempotency(ctx context.Context, key string, status int, body []byte) error
	// ReleaseIdempotency deletes the reservation of key, so a retry can run again.
	ReleaseIdempotency(ctx context.Context, key string) error
	// IdempotencyRecord returns the record with key, or ErrNotFound (expired ones too).
	IdempotencyRecord(ctx context.Context, key string, now time.Time) (*IdempotencyRecord, error)
	// PurgeIdempotency deletes records that expired before now and returns how many.
	PurgeIdempotency(ctx context.Context, now time.Time) (int, error)
}
