package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

var outboxTests = []storeTest{
	{"RoundTrip", testOutboxRoundTrip},
	{"DueEarliestFirst", testOutboxDue},
	{"UpdateReschedulesAndRetires", testOutboxUpdate},
	{"UpdateErrorWritesNothing", testOutboxUpdateError},
	{"MissingIsNotFound", testOutboxMissing},
}

func testOutboxRoundTrip(t *testing.T, s bridge.Store) {
	pending := newMessage("acme", epoch.In(elsewhere))
	pending.Type = bridge.EventFailed
	pending.Attempts = 3
	pending.LastError = "receiver answered 503"
	retired := newMessage("globex", epoch)
	retired.Type = bridge.EventExpired
	retired.DeliveredAt = epoch.Add(time.Minute)
	retired.AbandonedAt = epoch.Add(24 * time.Hour)
	retired.Payload = []byte{0, 1, 2, 0xfe, 0xff} // the exact body: bytes, not necessarily text
	want := []*bridge.OutboxMessage{normalizeMessage(pending), normalizeMessage(retired)}
	writeOutbox(t, s, pending, retired)

	for i, m := range []*bridge.OutboxMessage{pending, retired} {
		got, err := s.OutboxMessage(t.Context(), m.ID)
		require.NoError(t, err)
		assert.Equal(t, want[i], normalizeMessage(got))
	}
}

func testOutboxDue(t *testing.T, s bridge.Store) {
	now := epoch
	twoAgo := newMessage("acme", now.Add(-2*time.Minute))
	oneAgo := newMessage("globex", now.Add(-time.Minute).In(elsewhere))
	exactlyNow := newMessage("acme", now)
	justAfter := newMessage("acme", now.Add(time.Nanosecond))
	later := newMessage("acme", now.Add(time.Hour))
	retired := newMessage("acme", now.Add(-time.Hour))
	retired.DeliveredAt = now.Add(-time.Minute)
	// Written out of order, in two updates.
	writeOutbox(t, s, later, exactlyNow, retired)
	writeOutbox(t, s, oneAgo, justAfter, twoAgo)

	tests := []struct {
		name  string
		now   time.Time
		limit int
		want  []*bridge.OutboxMessage
	}{
		{"not after now", now, 10, []*bridge.OutboxMessage{twoAgo, oneAgo, exactlyNow}},
		{"limit", now, 2, []*bridge.OutboxMessage{twoAgo, oneAgo}},
		{"limit one", now, 1, []*bridge.OutboxMessage{twoAgo}},
		{"earlier", now.Add(-90 * time.Second), 10, []*bridge.OutboxMessage{twoAgo}},
		{"before any", now.Add(-3 * time.Minute), 10, nil},
		{"everything pending", now.Add(2 * time.Hour), 10, []*bridge.OutboxMessage{twoAgo, oneAgo, exactlyNow, justAfter, later}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.DueOutbox(t.Context(), tc.now, tc.limit)
			require.NoError(t, err)
			assert.Equal(t, messageIDs(tc.want), messageIDs(got))
			for i := range min(len(got), len(tc.want)) {
				assert.Equal(t, normalizeMessage(tc.want[i]), normalizeMessage(got[i]))
			}
		})
	}
}

func testOutboxUpdate(t *testing.T, s bridge.Store) {
	now := epoch
	first := newMessage("acme", now.Add(-3*time.Minute))
	second := newMessage("acme", now.Add(-2*time.Minute))
	third := newMessage("acme", now.Add(-time.Minute))
	writeOutbox(t, s, first, second, third)
	due := func(at time.Time) []string {
		t.Helper()
		msgs, err := s.DueOutbox(t.Context(), at, 100)
		require.NoError(t, err)
		return messageIDs(msgs)
	}
	farFuture := now.Add(1000 * time.Hour)

	// A failed delivery: try again in 30 minutes.
	retryAt := now.Add(30 * time.Minute)
	updated, err := s.UpdateOutbox(t.Context(), first.ID, func(m *bridge.OutboxMessage) error {
		m.Attempts++
		m.LastError = "receiver answered 500"
		m.NextAttemptAt = retryAt
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 1, updated.Attempts)
	assert.Equal(t, []string{second.ID, third.ID}, due(now), "a rescheduled message is not due before its time")
	assert.Equal(t, []string{second.ID, third.ID, first.ID}, due(retryAt), "and is due at it")
	got, err := s.OutboxMessage(t.Context(), first.ID)
	require.NoError(t, err)
	assert.Equal(t, normalizeMessage(updated), normalizeMessage(got))

	// Delivered and abandoned messages never come back, however late.
	_, err = s.UpdateOutbox(t.Context(), second.ID, func(m *bridge.OutboxMessage) error {
		m.Attempts++
		m.DeliveredAt = now
		return nil
	})
	require.NoError(t, err)
	_, err = s.UpdateOutbox(t.Context(), third.ID, func(m *bridge.OutboxMessage) error {
		m.AbandonedAt = now
		m.LastError = "gave up after 24h"
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{first.ID}, due(farFuture))

	// They stay readable, for audit.
	got, err = s.OutboxMessage(t.Context(), second.ID)
	require.NoError(t, err)
	assert.True(t, got.DeliveredAt.Equal(now))
	assert.False(t, got.Pending())
	got, err = s.OutboxMessage(t.Context(), third.ID)
	require.NoError(t, err)
	assert.True(t, got.AbandonedAt.Equal(now))
	assert.Equal(t, "gave up after 24h", got.LastError)

	// Updating a retired message keeps it retired.
	_, err = s.UpdateOutbox(t.Context(), second.ID, func(m *bridge.OutboxMessage) error {
		m.NextAttemptAt = now
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{first.ID}, due(farFuture))
}

func testOutboxUpdateError(t *testing.T, s bridge.Store) {
	msg := newMessage("acme", epoch)
	writeOutbox(t, s, msg)
	errRefused := errors.New("refused by fn")

	updated, err := s.UpdateOutbox(t.Context(), msg.ID, func(m *bridge.OutboxMessage) error {
		m.DeliveredAt = epoch
		m.NextAttemptAt = epoch.Add(time.Hour)
		m.Attempts = 7
		return errRefused
	})
	assert.ErrorIs(t, err, errRefused)
	assert.Nil(t, updated)
	got, err := s.OutboxMessage(t.Context(), msg.ID)
	require.NoError(t, err)
	assert.Equal(t, normalizeMessage(msg), normalizeMessage(got))
	due, err := s.DueOutbox(t.Context(), epoch, 10)
	require.NoError(t, err)
	assert.Equal(t, []string{msg.ID}, messageIDs(due))
}

func testOutboxMissing(t *testing.T, s bridge.Store) {
	writeOutbox(t, s, newMessage("acme", epoch))
	missing := bridge.NewEventID()

	_, err := s.OutboxMessage(t.Context(), missing)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "OutboxMessage")
	called := false
	_, err = s.UpdateOutbox(t.Context(), missing, func(*bridge.OutboxMessage) error { called = true; return nil })
	assert.ErrorIs(t, err, bridge.ErrNotFound, "UpdateOutbox")
	assert.False(t, called, "UpdateOutbox called fn for a missing message")
	_, err = s.OutboxMessage(t.Context(), missing)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "UpdateOutbox of a missing message created it")
}
