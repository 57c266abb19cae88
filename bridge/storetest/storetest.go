// Package storetest is the conformance suite for bridge.Store. Every implementation (bbolt
// today, Redis later) runs Run from its own tests, so they all keep one contract: the doc comments
// of bridge/store.go, clause by clause.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

// Run runs the suite against stores made by open, one fresh, empty store per subtest. Subtests
// run one after another, never in parallel, so open may reset shared state (a Redis database,
// say). Run closes each store when its subtest ends; open need not.
func Run(t *testing.T, open func(t *testing.T) bridge.Store) {
	groups := []struct {
		name  string
		tests []storeTest
	}{
		{"Session", sessionTests},
		{"ListSessions", listTests},
		{"APIKey", keyTests},
		{"Outbox", outboxTests},
		{"Idempotency", idempotencyTests},
		{"Store", storeTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					s := open(t)
					require.NotNil(t, s, "open returned no store")
					t.Cleanup(func() { assert.NoError(t, s.Close(), "Close") })
					tc.run(t, s)
				})
			}
		})
	}
}

// storeTest is one subtest of the suite.
type storeTest struct {
	name string
	run  func(t *testing.T, s bridge.Store)
}

// epoch is the suite's "now": nanoseconds set, so a store that truncates times fails.
var epoch = time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.UTC)

// elsewhere is a zone other than UTC: stored times must keep their instant whatever the zone.
var elsewhere = time.FixedZone("UTC+05:30", 5*3600+1800)

// newGUID returns a fresh fake VCC session GUID.
func newGUID() string { return "guid-" + strings.ToLower(bridge.RandomBase62(24)) }

// newSession returns an active session with one attempt, created at created.
func newSession(merchantID string, mode bridge.Mode, agentID string, created time.Time) *bridge.Session {
	return &bridge.Session{
		ID:         bridge.NewSessionID(mode),
		MerchantID: merchantID,
		Mode:       mode,
		AgentID:    agentID,
		Channel:    bridge.ChannelAgentAssist,
		Amount:     1240,
		Currency:   "GBP",
		Status:     bridge.StatusActive,
		CreatedAt:  created,
		UpdatedAt:  created,
		ExpiresAt:  created.Add(30 * time.Minute),
		Attempts: []bridge.Attempt{{
			Number:      1,
			SessionGUID: newGUID(),
			IframeURL:   "https://pcipal.example/session/1",
			StartedAt:   created,
		}},
	}
}

// fullSession returns a session with every field set, including the plaintext tokens that must
// never reach storage.
func fullSession() *bridge.Session {
	return &bridge.Session{
		ID:                     bridge.NewSessionID(bridge.ModeLive),
		MerchantID:             "acme",
		Mode:                   bridge.ModeLive,
		AgentID:                "agent-7",
		Channel:                bridge.ChannelDigital,
		Amount:                 99_999_999,
		Currency:               "JPY",
		Country:                "JP",
		AccountConfigurationID: new(42),
		Reference:              "INV-2026-0042",
		Customer: bridge.Customer{
			FirstName: "Ada", Surname: "Lovelace", Email: "ada@example.com", Phone: "+441234567890",
			Street1: "12 St James's Square", City: "London", Postcode: "SW1Y 4JH",
		},
		SealedCustomer: []byte("sealed customer"),
		LineItems:      []bridge.LineItem{{Name: "Gas", Quantity: 1, UnitAmount: 99_000_000}, {Name: "Meter", Quantity: 9999, UnitAmount: 99}},
		Metadata:       map[string]string{"crm": "case-1", "note": "ünïcødé ✓"},
		SuccessURL:     "https://crm.acme.example/ok",
		CancelURL:      "https://crm.acme.example/cancel",
		Status:         bridge.StatusFailed,
		CreatedAt:      epoch.In(elsewhere),
		UpdatedAt:      epoch.Add(10 * time.Minute),
		ExpiresAt:      epoch.Add(30 * time.Minute),
		Attempts: []bridge.Attempt{
			{
				Number: 1, SessionGUID: newGUID(), ProviderSessionGUID: newGUID(),
				IframeURL: "https://pcipal.example/session/1", CustomerURL: "https://pay.example/c/1",
				BearerToken: "bearer-secret-1", RefreshToken: "refresh-secret-1", SealedTokens: []byte{0, 1, 2, 0xff},
				StartedAt: epoch, EndedAt: epoch.Add(time.Minute), EndReason: bridge.EndFrameRefused,
			},
			{
				Number: 2, SessionGUID: newGUID(), ProviderSessionGUID: newGUID(),
				IframeURL:   "https://pcipal.example/session/2",
				BearerToken: "bearer-secret-2", RefreshToken: "refresh-secret-2", SealedTokens: []byte("sealed"),
				StartedAt: epoch.Add(time.Minute), EndedAt: epoch.Add(10 * time.Minute), EndReason: bridge.EndCompleted,
			},
		},
		Result:  &bridge.Result{Decision: bridge.DecisionReject, ReasonCode: "481", TransactionID: "tx-1"},
		Failure: &bridge.Failure{Code: bridge.CodeProviderChargeFailed, Error: "The card was declined."},
	}
}

// stored returns what a store must hold for s: s without its plaintext tokens.
func stored(s *bridge.Session) *bridge.Session {
	c := s.Clone()
	for i := range c.Attempts {
		c.Attempts[i].BearerToken, c.Attempts[i].RefreshToken = "", ""
	}
	c.Customer = bridge.Customer{} // personal data reaches storage sealed only
	return c
}

// normalizeSession returns a copy of s that compares with assert.Equal the way the instants
// compare with time.Time.Equal: UTC() drops the zone and the monotonic reading. Empty slices and
// maps become nil, since a store may not tell them apart.
func normalizeSession(s *bridge.Session) *bridge.Session {
	c := s.Clone()
	c.CreatedAt, c.UpdatedAt, c.ExpiresAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC(), c.ExpiresAt.UTC()
	for i := range c.Attempts {
		a := &c.Attempts[i]
		a.StartedAt, a.EndedAt = a.StartedAt.UTC(), a.EndedAt.UTC()
		if len(a.SealedTokens) == 0 {
			a.SealedTokens = nil
		}
	}
	if len(c.Attempts) == 0 {
		c.Attempts = nil
	}
	if len(c.LineItems) == 0 {
		c.LineItems = nil
	}
	if len(c.Metadata) == 0 {
		c.Metadata = nil
	}
	return c
}

// assertSession asserts got is want: every field, times compared as instants.
func assertSession(t *testing.T, want, got *bridge.Session) bool {
	t.Helper()
	if !assert.NotNil(t, got, "session") {
		return false
	}
	return assert.Equal(t, normalizeSession(want), normalizeSession(got))
}

// mustGet returns the stored session with id.
func mustGet(t *testing.T, s bridge.Store, id string) *bridge.Session {
	t.Helper()
	got, err := s.Session(t.Context(), id)
	require.NoError(t, err, "Session(%s)", id)
	return got
}

// mustCreate stores every session.
func mustCreate(t *testing.T, s bridge.Store, sessions ...*bridge.Session) {
	t.Helper()
	for _, sess := range sessions {
		require.NoError(t, s.CreateSession(t.Context(), sess), "CreateSession(%s)", sess.ID)
	}
}

// ids returns the ids of sessions, in order.
func ids(sessions []*bridge.Session) []string {
	out := make([]string, len(sessions))
	for i, s := range sessions {
		out[i] = s.ID
	}
	return out
}

// newestFirst returns the ids of sessions in the order ListSessions promises: CreatedAt
// descending, ties by id descending.
func newestFirst(sessions []*bridge.Session) []string {
	sorted := slices.Clone(sessions)
	slices.SortFunc(sorted, func(a, b *bridge.Session) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return ids(sorted)
}

// newMessage returns a pending outbox message for merchantID, due at due.
func newMessage(merchantID string, due time.Time) *bridge.OutboxMessage {
	id := bridge.NewEventID()
	return &bridge.OutboxMessage{
		ID:            id,
		MerchantID:    merchantID,
		Type:          bridge.EventSucceeded,
		Payload:       fmt.Appendf(nil, `{"id":%q,"type":"session.succeeded"}`, id),
		CreatedAt:     epoch,
		NextAttemptAt: due,
	}
}

// writeOutbox writes msgs the only way there is: with a session update.
func writeOutbox(t *testing.T, s bridge.Store, msgs ...*bridge.OutboxMessage) {
	t.Helper()
	sess := newSession("acme", bridge.ModeTest, "agent-1", epoch)
	mustCreate(t, s, sess)
	_, err := s.UpdateSession(t.Context(), sess.ID, func(_ *bridge.Session, out *bridge.Outbox) error {
		for _, m := range msgs {
			out.Add(m)
		}
		return nil
	})
	require.NoError(t, err, "UpdateSession writing the outbox")
}

// normalizeMessage is normalizeSession for outbox messages.
func normalizeMessage(m *bridge.OutboxMessage) *bridge.OutboxMessage {
	c := *m
	c.CreatedAt, c.NextAttemptAt = c.CreatedAt.UTC(), c.NextAttemptAt.UTC()
	c.DeliveredAt, c.AbandonedAt, c.RetryFrom = c.DeliveredAt.UTC(), c.AbandonedAt.UTC(), c.RetryFrom.UTC()
	c.Deliveries = slices.Clone(m.Deliveries)
	for i := range c.Deliveries {
		c.Deliveries[i].At = c.Deliveries[i].At.UTC()
	}
	c.Payload = slices.Clone(m.Payload)
	if len(c.Payload) == 0 {
		c.Payload = nil
	}
	return &c
}

// messageIDs returns the ids of msgs, in order.
func messageIDs(msgs []*bridge.OutboxMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

// cancelled returns a context that is already cancelled.
func cancelled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}
