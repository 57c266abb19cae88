package pgstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/pgstore/pgtest"
)

// TestEventQueriesUseIndexes is TestQueriesUseIndexes for the events queries of 0004: a page of
// events, the purge and the pending count each read an index, in its order, never the table.
func TestEventQueriesUseIndexes(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s, err := Open(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	ctx := t.Context()
	epoch := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	sess := &bridge.Session{ID: bridge.NewSessionID(bridge.ModeTest), MerchantID: "m0", Mode: bridge.ModeTest,
		AgentID: "agent-1", Status: bridge.StatusActive, CreatedAt: epoch,
		Attempts: []bridge.Attempt{{Number: 1, SessionGUID: "guid-1"}}}
	require.NoError(t, s.CreateSession(ctx, sess))
	var last *bridge.OutboxMessage
	_, err = s.UpdateSession(ctx, sess.ID, func(_ *bridge.Session, out *bridge.Outbox) error {
		for i := range 200 {
			last = &bridge.OutboxMessage{ID: bridge.NewEventID(), MerchantID: fmt.Sprintf("m%d", i%5),
				Mode: bridge.ModeTest, SessionID: fmt.Sprintf("vp_cs_test_%d", i%20), Type: bridge.EventSucceeded,
				Payload: []byte(`{}`), CreatedAt: epoch.Add(time.Duration(i) * time.Second), NextAttemptAt: epoch,
				DeliveredAt: epoch}
			out.Add(last)
		}
		return nil
	})
	require.NoError(t, err)
	_, err = s.pool.Exec(ctx, `ANALYZE`)
	require.NoError(t, err)

	list := func(f bridge.EventFilter) (string, []any) {
		f.MerchantID, f.Mode = last.MerchantID, last.Mode
		q, args := eventsQuery(f)
		if f.StartingAfter != "" {
			args = append(args, nanos(last.CreatedAt), last.ID)
		}
		return q, args
	}
	tests := []struct {
		name   string
		filter *bridge.EventFilter
		query  string
		args   []any
		index  string
	}{
		{"ListEvents", &bridge.EventFilter{}, "", nil, "outbox_events"},
		{"ListEvents after", &bridge.EventFilter{StartingAfter: last.ID}, "", nil, "outbox_events"},
		{"ListEvents type", &bridge.EventFilter{Type: bridge.EventFailed}, "", nil, "outbox_events_by_type"},
		{"ListEvents type after", &bridge.EventFilter{Type: bridge.EventFailed, StartingAfter: last.ID}, "", nil, "outbox_events_by_type"},
		{"ListEvents session", &bridge.EventFilter{SessionID: last.SessionID}, "", nil, "outbox_events_by_session"},
		{"ListEvents session after", &bridge.EventFilter{SessionID: last.SessionID, StartingAfter: last.ID}, "", nil, "outbox_events_by_session"},
		{"event cursor", nil, sqlEventCursor, []any{last.ID, "m0", "test"}, "outbox_pkey"},
		{"PurgeEvents", nil, sqlPurgeEvents, []any{nanos(epoch.Add(time.Minute))}, "outbox_done_by_created"},
		{"OutboxPending", nil, sqlOutboxPending, nil, "outbox_pending_created"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.filter != nil {
				tc.query, tc.args = list(*tc.filter)
			}
			plan := explain(t, s, tc.query, tc.args...)
			assert.NotContains(t, plan, "Seq Scan", "%s\n%s", tc.query, plan)
			assert.NotContains(t, plan, "Sort", "the index does not give the order:\n%s", plan)
			assert.Contains(t, plan, tc.index, plan)
		})
	}
}
