package pgstore_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/pgstore"
	"github.com/paybridge/paybridge/bridge/pgstore/pgtest"
)

// TestEventsOfAnOlderDatabase: a database at schema 3 (before events), holding outbox messages as
// that version wrote them, lists them as events of the right mode and session after migration 4.
func TestEventsOfAnOlderDatabase(t *testing.T) {
	url := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(t.Context(), `CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`)
	require.NoError(t, err)
	files, err := filepath.Glob("migrations/000[123]_*.sql")
	require.NoError(t, err)
	require.Len(t, files, 3)
	for i, f := range files {
		sql, err := os.ReadFile(f)
		require.NoError(t, err)
		_, err = conn.Exec(t.Context(), string(sql))
		require.NoError(t, err, f)
		_, err = conn.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, i+1, filepath.Base(f))
		require.NoError(t, err)
	}

	created := time.Date(2026, 11, 1, 9, 30, 0, 0, time.UTC)
	old := func(id, payload string, pending bool) {
		doc := map[string]any{"id": id, "merchantId": "acme", "type": "session.succeeded", "payload": []byte(payload),
			"createdAt": created, "attempts": 1, "nextAttemptAt": created}
		if !pending {
			doc["deliveredAt"] = created.Add(time.Second)
		}
		raw, err := json.Marshal(doc)
		require.NoError(t, err)
		_, err = conn.Exec(t.Context(), `INSERT INTO outbox (id, merchant_id, pending, next_ns, doc) VALUES ($1, 'acme', $2, $3, $4)`,
			id, pending, created.UnixNano(), raw)
		require.NoError(t, err)
	}
	old("vp_evt_old1", `{"id":"vp_evt_old1","type":"session.succeeded","livemode":false,"data":{"id":"vp_cs_test_0ld5e55ion000001"}}`, false)
	old("vp_evt_old2", `{"id":"vp_evt_old2","type":"session.succeeded","livemode":true,"data":{"id":"vp_cs_live_0ld5e55ion000002"}}`, true)

	s, err := pgstore.Open(t.Context(), url)
	require.NoError(t, err)
	defer s.Close()
	test, err := s.ListEvents(t.Context(), bridge.EventFilter{MerchantID: "acme", Mode: bridge.ModeTest})
	require.NoError(t, err)
	require.Len(t, test, 1)
	assert.Equal(t, "vp_evt_old1", test[0].ID)
	assert.Equal(t, "vp_cs_test_0ld5e55ion000001", test[0].SessionID)
	assert.Equal(t, bridge.DeliveryDelivered, test[0].DeliveryStatus())
	live, err := s.ListEvents(t.Context(), bridge.EventFilter{MerchantID: "acme", Mode: bridge.ModeLive, SessionID: "vp_cs_live_0ld5e55ion000002"})
	require.NoError(t, err)
	require.Len(t, live, 1)
	assert.Equal(t, "vp_evt_old2", live[0].ID)

	n, oldest, err := s.OutboxPending(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the pending one is counted")
	assert.True(t, oldest.Equal(created), "oldest pending %v", oldest)
	purged, err := s.PurgeEvents(t.Context(), created.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 1, purged, "the delivered one is purged, the pending one kept")
}
