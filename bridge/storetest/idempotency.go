package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

var idempotencyTests = []storeTest{
	{"ReserveCompleteReplay", testIdempotencyReserve},
	{"ReserveReplacesExpired", testIdempotencyExpiredReplaced},
	{"ReleaseDeletes", testIdempotencyRelease},
	{"ExpiredIsNotFound", testIdempotencyExpiredGet},
	{"PurgeDeletesOnlyExpired", testIdempotencyPurge},
	{"ConcurrentReservesOneWins", testIdempotencyConcurrent},
}

// idempotencyTTL is how long the suite's records live, as paybridge keeps them.
const idempotencyTTL = 24 * time.Hour

// newRecord returns a reservation of key made at now.
func newRecord(key, requestHash string, now time.Time) *bridge.IdempotencyRecord {
	return &bridge.IdempotencyRecord{Key: key, RequestHash: requestHash, CreatedAt: now, ExpiresAt: now.Add(idempotencyTTL)}
}

// mustReserve reserves rec and requires that it won.
func mustReserve(t *testing.T, s bridge.Store, rec *bridge.IdempotencyRecord) {
	t.Helper()
	existing, err := s.ReserveIdempotency(t.Context(), rec)
	require.NoError(t, err)
	require.Nil(t, existing, "reserving %s found a record", rec.Key)
}

func testIdempotencyReserve(t *testing.T, s bridge.Store) {
	const key = "acme/test/order-1"
	first := newRecord(key, "hash-1", epoch)
	first.ResourceID = "vp_cs_test_0000000000000001"
	mustReserve(t, s, first)
	mustReserve(t, s, newRecord("acme/live/order-1", "hash-9", epoch)) // another scope, another key

	// A duplicate while the first is in flight sees the reservation.
	existing, err := s.ReserveIdempotency(t.Context(), newRecord(key, "hash-2", epoch.Add(time.Second)))
	require.NoError(t, err)
	require.NotNil(t, existing, "a second reserve must return the first record")
	assert.Equal(t, key, existing.Key)
	assert.Equal(t, "hash-1", existing.RequestHash, "the second reserve overwrote the first")
	assert.False(t, existing.Done)
	assert.True(t, existing.CreatedAt.Equal(epoch))
	assert.True(t, existing.ExpiresAt.Equal(epoch.Add(idempotencyTTL)))
	assert.Equal(t, first.ResourceID, existing.ResourceID, "the first request's resource id is kept")

	body := []byte(`{"id":"vp_cs_test_0000000000000001","object":"session"}`)
	require.NoError(t, s.CompleteIdempotency(t.Context(), key, 201, body))

	existing, err = s.ReserveIdempotency(t.Context(), newRecord(key, "hash-1", epoch.Add(time.Minute)))
	require.NoError(t, err)
	require.NotNil(t, existing)
	assert.True(t, existing.Done)
	assert.Equal(t, 201, existing.Status)
	assert.Equal(t, body, existing.Body)
	assert.Equal(t, "hash-1", existing.RequestHash)

	got, err := s.IdempotencyRecord(t.Context(), key, epoch.Add(time.Minute))
	require.NoError(t, err)
	assert.True(t, got.Done)
	assert.Equal(t, 201, got.Status)
	assert.Equal(t, body, got.Body)

	other, err := s.IdempotencyRecord(t.Context(), "acme/live/order-1", epoch)
	require.NoError(t, err)
	assert.False(t, other.Done, "completing one key completed another")

	assert.ErrorIs(t, s.CompleteIdempotency(t.Context(), "acme/test/never-reserved", 200, nil), bridge.ErrNotFound)
}

func testIdempotencyExpiredReplaced(t *testing.T, s bridge.Store) {
	const key = "acme/test/order-2"
	first := newRecord(key, "hash-1", epoch)
	mustReserve(t, s, first)
	require.NoError(t, s.CompleteIdempotency(t.Context(), key, 201, []byte(`{}`)))

	// Just before expiry the record still holds.
	existing, err := s.ReserveIdempotency(t.Context(), newRecord(key, "hash-2", first.ExpiresAt.Add(-time.Nanosecond)))
	require.NoError(t, err)
	require.NotNil(t, existing)
	assert.Equal(t, "hash-1", existing.RequestHash)

	// After it, a reservation replaces it.
	later := first.ExpiresAt.Add(time.Minute)
	mustReserve(t, s, newRecord(key, "hash-2", later))
	got, err := s.IdempotencyRecord(t.Context(), key, later)
	require.NoError(t, err)
	assert.Equal(t, "hash-2", got.RequestHash)
	assert.False(t, got.Done, "the replacement inherited the old response")
	assert.Empty(t, got.Body)
	assert.True(t, got.ExpiresAt.Equal(later.Add(idempotencyTTL)))
}

func testIdempotencyRelease(t *testing.T, s bridge.Store) {
	const key = "acme/test/order-3"
	mustReserve(t, s, newRecord(key, "hash-1", epoch))
	mustReserve(t, s, newRecord("acme/test/bystander", "hash-1", epoch))

	require.NoError(t, s.ReleaseIdempotency(t.Context(), key))
	_, err := s.IdempotencyRecord(t.Context(), key, epoch)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "a released key is gone")
	mustReserve(t, s, newRecord(key, "hash-2", epoch.Add(time.Second))) // so a retry runs again

	_, err = s.IdempotencyRecord(t.Context(), "acme/test/bystander", epoch)
	assert.NoError(t, err, "Release deleted another key")
}

func testIdempotencyExpiredGet(t *testing.T, s bridge.Store) {
	const key = "acme/test/order-4"
	rec := newRecord(key, "hash-1", epoch)
	mustReserve(t, s, rec)

	tests := []struct {
		name  string
		now   time.Time
		found bool
	}{
		{"fresh", epoch, true},
		{"just before expiry", rec.ExpiresAt.Add(-time.Second), true},
		{"after expiry", rec.ExpiresAt.Add(time.Second), false},
		{"long after", rec.ExpiresAt.Add(1000 * time.Hour), false},
	}
	for _, tc := range tests {
		got, err := s.IdempotencyRecord(t.Context(), key, tc.now)
		if tc.found {
			if assert.NoError(t, err, tc.name) {
				assert.Equal(t, "hash-1", got.RequestHash, tc.name)
			}
		} else {
			assert.ErrorIs(t, err, bridge.ErrNotFound, tc.name)
		}
	}
	_, err := s.IdempotencyRecord(t.Context(), "acme/test/never", epoch)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "missing key")
}

func testIdempotencyPurge(t *testing.T, s bridge.Store) {
	for i, ttl := range []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour} {
		rec := newRecord(fmt.Sprintf("acme/test/purge-%d", i), "hash", epoch)
		rec.ExpiresAt = epoch.Add(ttl)
		mustReserve(t, s, rec)
	}

	n, err := s.PurgeIdempotency(t.Context(), epoch.Add(150*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, 2, n, "purged count")

	// Asked at epoch, when none had expired: the purged ones are really gone.
	for i, want := range []bool{false, false, true} {
		_, err := s.IdempotencyRecord(t.Context(), fmt.Sprintf("acme/test/purge-%d", i), epoch)
		if want {
			assert.NoError(t, err, "record %d was purged before it expired", i)
		} else {
			assert.ErrorIs(t, err, bridge.ErrNotFound, "record %d survived the purge", i)
		}
	}

	n, err = s.PurgeIdempotency(t.Context(), epoch.Add(150*time.Minute))
	require.NoError(t, err)
	assert.Zero(t, n, "a second purge found more")
}

func testIdempotencyConcurrent(t *testing.T, s bridge.Store) {
	const (
		key      = "acme/test/order-5"
		reserves = 20
	)
	type result struct {
		hash     string
		existing *bridge.IdempotencyRecord
		err      error
	}
	results := make(chan result, reserves)
	var wg sync.WaitGroup
	for i := range reserves {
		hash := fmt.Sprintf("hash-%d", i)
		wg.Go(func() {
			existing, err := s.ReserveIdempotency(t.Context(), newRecord(key, hash, epoch))
			results <- result{hash, existing, err}
		})
	}
	wg.Wait()
	close(results)

	var winners []string
	var seen []string
	for r := range results {
		require.NoError(t, r.err)
		if r.existing == nil {
			winners = append(winners, r.hash)
		} else {
			seen = append(seen, r.existing.RequestHash)
		}
	}
	require.Len(t, winners, 1, "exactly one reserve may win")
	assert.Len(t, seen, reserves-1)
	for _, h := range seen {
		assert.Equal(t, winners[0], h, "a loser saw another record than the winner's")
	}
	got, err := s.IdempotencyRecord(t.Context(), key, epoch)
	require.NoError(t, err)
	assert.Equal(t, winners[0], got.RequestHash)
}
