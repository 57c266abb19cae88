package boltstore_test

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
)

// TestEventsOfAnOlderFile: a file written before events were listed (no outbox_order and
// outbox_created buckets, messages without mode or session) lists its messages as events once
// opened: the indexes are filled from each message's payload.
func TestEventsOfAnOlderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "paybridge.db")
	s, err := boltstore.Open(path, boltstore.Options{})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	// As the previous version left it: the message as it wrote it, and no event indexes.
	created := time.Date(2026, 11, 1, 9, 30, 0, 0, time.UTC)
	payload := []byte(`{"id":"vp_evt_old1","type":"session.succeeded","livemode":false,"data":{"id":"vp_cs_test_0ld5e55ion000001","status":"succeeded"}}`)
	doc, err := json.Marshal(map[string]any{
		"id": "vp_evt_old1", "merchantId": "acme", "type": "session.succeeded", "payload": payload,
		"createdAt": created, "attempts": 1, "nextAttemptAt": created, "deliveredAt": created.Add(time.Second),
	})
	require.NoError(t, err)
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{"outbox_order", "outbox_created"} {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("outbox")).Put([]byte("vp_evt_old1"), doc)
	}))
	require.NoError(t, db.Close())

	s, err = boltstore.Open(path, boltstore.Options{})
	require.NoError(t, err)
	defer s.Close()
	list, err := s.ListEvents(t.Context(), bridge.EventFilter{MerchantID: "acme", Mode: bridge.ModeTest})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "vp_evt_old1", list[0].ID)
	assert.Equal(t, bridge.ModeTest, list[0].Mode)
	assert.Equal(t, "vp_cs_test_0ld5e55ion000001", list[0].SessionID)
	assert.Equal(t, bridge.DeliveryDelivered, list[0].DeliveryStatus())

	bySession, err := s.ListEvents(t.Context(), bridge.EventFilter{MerchantID: "acme", Mode: bridge.ModeTest, SessionID: "vp_cs_test_0ld5e55ion000001"})
	require.NoError(t, err)
	assert.Len(t, bySession, 1)
	live, err := s.ListEvents(t.Context(), bridge.EventFilter{MerchantID: "acme", Mode: bridge.ModeLive})
	require.NoError(t, err)
	assert.Empty(t, live, "a test event is never a live one")
	purged, err := s.PurgeEvents(t.Context(), created.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 1, purged, "the purge finds it too")
}
