package pgstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/pgstore/pgtest"
)

// TestQueriesUseIndexes asks PostgreSQL for the plan of every read query with sequential scans
// and sorts priced out (enable_seqscan, enable_sort off: the planner still uses them when nothing
// else can answer): each must be answered from an index, in the index's order, so reads cost the
// rows they return, not the size of the table.
func TestQueriesUseIndexes(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s, err := Open(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	// A few rows, and fresh statistics, so the plans are those of a real table.
	ctx := t.Context()
	epoch := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	var last *bridge.Session
	for i := range 50 {
		sess := &bridge.Session{ID: bridge.NewSessionID(bridge.ModeTest), MerchantID: fmt.Sprintf("m%d", i%5),
			Mode: bridge.ModeTest, AgentID: fmt.Sprintf("agent-%d", i%7), Status: bridge.StatusActive,
			CreatedAt: epoch.Add(time.Duration(i) * time.Second),
			Attempts:  []bridge.Attempt{{Number: 1, SessionGUID: fmt.Sprintf("guid-%d", i)}}}
		require.NoError(t, s.CreateSession(ctx, sess))
		last = sess
		rec := &bridge.IdempotencyRecord{Key: fmt.Sprintf("m\x00test\x00key-%d", i), RequestHash: "h",
			CreatedAt: epoch, ExpiresAt: epoch.Add(time.Duration(i) * time.Hour)}
		_, err := s.ReserveIdempotency(ctx, rec)
		require.NoError(t, err)
	}
	_, err = s.pool.Exec(ctx, `ANALYZE`)
	require.NoError(t, err)

	list := func(f bridge.SessionFilter) (string, []any) {
		f.MerchantID, f.Mode = last.MerchantID, last.Mode
		q, args := listQuery(f)
		if f.StartingAfter != "" {
			args = append(args, nanos(last.CreatedAt), last.ID)
		}
		return q, args
	}
	tests := []struct {
		name  string
		query string
		args  []any
		index string // the index the plan must name
	}{
		{"Session", sqlSession, []any{last.ID}, "sessions_pkey"},
		{"SessionByGUID", sqlSessionByGUID, []any{"guid-3"}, "session_guids_pkey"},
		{"OpenSessions", sqlOpenSessions, nil, "sessions_open"},
		{"ListSessions", "", nil, "sessions_by_created"},
		{"ListSessions after", "", nil, "sessions_by_created"},
		{"ListSessions agent", "", nil, "sessions_by_agent"},
		{"ListSessions agent after", "", nil, "sessions_by_agent"},
		{"ListSessions status", "", nil, "sessions_by_status"},
		{"ListSessions status after", "", nil, "sessions_by_status"},
		{"APIKeyByHash", sqlKeyByHash, []any{"abc"}, "api_keys_hash_key"},
		{"ListAPIKeys", sqlListKeys, []any{"m1"}, "api_keys_by_merchant"},
		{"DueOutbox", sqlDueOutbox, []any{int64(0), 10}, "outbox_due"},
		{"IdempotencyRecord", sqlRecord, []any{[]byte("k"), int64(0)}, "idempotency_pkey"},
		{"PurgeIdempotency", sqlPurge, []any{int64(0)}, "idempotency_by_expiry"},
	}
	filters := map[string]bridge.SessionFilter{
		"ListSessions":              {},
		"ListSessions after":        {StartingAfter: last.ID},
		"ListSessions agent":        {AgentID: last.AgentID},
		"ListSessions agent after":  {AgentID: last.AgentID, StartingAfter: last.ID},
		"ListSessions status":       {Status: bridge.StatusActive},
		"ListSessions status after": {Status: bridge.StatusActive, StartingAfter: last.ID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if f, ok := filters[tc.name]; ok {
				tc.query, tc.args = list(f)
			}
			plan := explain(t, s, tc.query, tc.args...)
			assert.NotContains(t, plan, "Seq Scan", "%s\n%s", tc.query, plan)
			assert.NotContains(t, plan, "Sort", "the index does not give the order:\n%s", plan)
			assert.Contains(t, plan, tc.index, plan)
		})
	}
}

// explain returns PostgreSQL's plan for query with args, sequential scans and sorts priced out.
func explain(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	var plan []string
	err := pgx.BeginFunc(t.Context(), s.pool, func(tx pgx.Tx) error {
		for _, set := range []string{`SET LOCAL enable_seqscan = off`, `SET LOCAL enable_sort = off`} {
			if _, err := tx.Exec(t.Context(), set); err != nil {
				return err
			}
		}
		rows, err := tx.Query(context.WithoutCancel(t.Context()), "EXPLAIN "+query, args...)
		if err != nil {
			return err
		}
		plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	require.NoError(t, err, query)
	return strings.Join(plan, "\n")
}
