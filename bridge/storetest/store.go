package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

var storeTests = []storeTest{
	{"Ping", testPing},
	{"CancelledContext", testCancelledContext},
}

func testPing(t *testing.T, s bridge.Store) {
	assert.NoError(t, s.Ping(t.Context()))
}

// testCancelledContext checks that every method gives up on a context that is already done,
// before it reads or writes anything.
func testCancelledContext(t *testing.T, s bridge.Store) {
	existing := newSession("acme", bridge.ModeTest, "agent-1", epoch)
	mustCreate(t, s, existing)
	existingKey := newKey("acme", epoch)
	require.NoError(t, s.CreateAPIKey(t.Context(), existingKey))
	msg := newMessage("acme", epoch)
	writeOutbox(t, s, msg)
	mustReserve(t, s, newRecord("acme/test/existing", "hash", epoch))

	fresh := newSession("acme", bridge.ModeTest, "agent-1", epoch)
	freshKey := newKey("acme", epoch)
	called := false
	dead := cancelled(t)

	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Ping", func(ctx context.Context) error { return s.Ping(ctx) }},
		{"CreateSession", func(ctx context.Context) error { return s.CreateSession(ctx, fresh) }},
		{"Session", func(ctx context.Context) error { _, err := s.Session(ctx, existing.ID); return err }},
		{"SessionByGUID", func(ctx context.Context) error {
			_, err := s.SessionByGUID(ctx, existing.Attempts[0].SessionGUID)
			return err
		}},
		{"UpdateSession", func(ctx context.Context) error {
			_, err := s.UpdateSession(ctx, existing.ID, func(c *bridge.Session, _ *bridge.Outbox) error {
				called = true
				return c.SetStatus(bridge.StatusCancelled, epoch)
			})
			return err
		}},
		{"ListSessions", func(ctx context.Context) error {
			_, err := s.ListSessions(ctx, bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest})
			return err
		}},
		{"OpenSessions", func(ctx context.Context) error { _, err := s.OpenSessions(ctx); return err }},
		{"CreateAPIKey", func(ctx context.Context) error { return s.CreateAPIKey(ctx, freshKey) }},
		{"APIKey", func(ctx context.Context) error { _, err := s.APIKey(ctx, existingKey.ID); return err }},
		{"APIKeyByHash", func(ctx context.Context) error { _, err := s.APIKeyByHash(ctx, existingKey.Hash); return err }},
		{"UpdateAPIKey", func(ctx context.Context) error {
			_, err := s.UpdateAPIKey(ctx, existingKey.ID, func(k *bridge.APIKey) error {
				called = true
				k.RevokedAt = epoch
				return nil
			})
			return err
		}},
		{"ListAPIKeys", func(ctx context.Context) error { _, err := s.ListAPIKeys(ctx, "acme"); return err }},
		{"DueOutbox", func(ctx context.Context) error { _, err := s.DueOutbox(ctx, epoch, 10); return err }},
		{"OutboxMessage", func(ctx context.Context) error { _, err := s.OutboxMessage(ctx, msg.ID); return err }},
		{"UpdateOutbox", func(ctx context.Context) error {
			_, err := s.UpdateOutbox(ctx, msg.ID, func(m *bridge.OutboxMessage) error {
				called = true
				m.DeliveredAt = epoch
				return nil
			})
			return err
		}},
		{"ListEvents", func(ctx context.Context) error {
			_, err := s.ListEvents(ctx, bridge.EventFilter{MerchantID: "acme", Mode: bridge.ModeTest})
			return err
		}},
		{"PurgeEvents", func(ctx context.Context) error { _, err := s.PurgeEvents(ctx, epoch.Add(1000*time.Hour)); return err }},
		{"OutboxPending", func(ctx context.Context) error { _, _, err := s.OutboxPending(ctx); return err }},
		{"ReserveIdempotency", func(ctx context.Context) error {
			_, err := s.ReserveIdempotency(ctx, newRecord("acme/test/fresh", "hash", epoch))
			return err
		}},
		{"CompleteIdempotency", func(ctx context.Context) error {
			return s.CompleteIdempotency(ctx, "acme/test/existing", 201, []byte(`{}`))
		}},
		{"ReleaseIdempotency", func(ctx context.Context) error { return s.ReleaseIdempotency(ctx, "acme/test/existing") }},
		{"IdempotencyRecord", func(ctx context.Context) error {
			_, err := s.IdempotencyRecord(ctx, "acme/test/existing", epoch)
			return err
		}},
		{"PurgeIdempotency", func(ctx context.Context) error {
			_, err := s.PurgeIdempotency(ctx, epoch.Add(1000*time.Hour))
			return err
		}},
	}
	for _, tc := range tests {
		assert.ErrorIs(t, tc.call(dead), context.Canceled, tc.name)
	}
	assert.False(t, called, "an update ran fn under a cancelled context")

	// Nothing was written.
	_, err := s.Session(t.Context(), fresh.ID)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "CreateSession wrote")
	assertSession(t, existing, mustGet(t, s, existing.ID))
	_, err = s.APIKey(t.Context(), freshKey.ID)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "CreateAPIKey wrote")
	k, err := s.APIKey(t.Context(), existingKey.ID)
	require.NoError(t, err)
	assert.True(t, k.RevokedAt.IsZero(), "UpdateAPIKey wrote")
	due, err := s.DueOutbox(t.Context(), epoch, 10)
	require.NoError(t, err)
	assert.Equal(t, []string{msg.ID}, messageIDs(due), "UpdateOutbox wrote")
	_, err = s.IdempotencyRecord(t.Context(), "acme/test/fresh", epoch)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "ReserveIdempotency wrote")
	rec, err := s.IdempotencyRecord(t.Context(), "acme/test/existing", epoch)
	require.NoError(t, err, "Release or Purge deleted")
	assert.False(t, rec.Done, "CompleteIdempotency wrote")
}
