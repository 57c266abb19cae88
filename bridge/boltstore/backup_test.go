package boltstore_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
)

// TestBackupWhileWriting (issue 13 item 4): a backup taken while sessions are being created is a
// file boltstore opens, holding every session whose create had returned before the backup
// began; its announced size is its exact length.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	for n := range 50 {
		require.NoError(t, s.CreateSession(ctx, testSession(n, bridge.ModeTest)))
	}

	// Writers keep creating during the backup; acked counts the creates that had returned.
	var acked atomic.Int64
	acked.Store(50)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var next atomic.Int64
	next.Store(50)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := int(next.Add(1) - 1)
				if err := s.CreateSession(ctx, testSession(n, bridge.ModeTest)); err != nil {
					t.Error(err)
					return
				}
				acked.Add(1)
			}
		})
	}
	require.Eventually(t, func() bool { return acked.Load() >= 100 }, 10*time.Second, time.Millisecond, "the writers got going")
	// What the store holds now was acknowledged before the backup begins; creates go on.
	before := ackedSessions(t, s)
	require.GreaterOrEqual(t, len(before), 100)

	var buf bytes.Buffer
	var announced int64
	n, err := s.Backup(&buf, func(size int64) error { announced = size; return nil })
	close(stop)
	wg.Wait()
	require.NoError(t, err)
	assert.Equal(t, int64(buf.Len()), n)
	assert.Equal(t, announced, n, "the announced size is exact")

	path := filepath.Join(t.TempDir(), "copy.db")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))
	copied, err := boltstore.Open(path, boltstore.Options{})
	require.NoError(t, err, "the copy is a store boltstore opens")
	defer copied.Close()
	for _, id := range before {
		got, err := copied.Session(ctx, id)
		if assert.NoError(t, err, "session %s, stored before the backup began, is in the copy", id) {
			assert.Equal(t, id, got.ID)
		}
	}
	open, err := copied.OpenSessions(ctx)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(open), len(before), "the indexes were copied with the records")
}

// ackedSessions returns the ids of every session the store holds right now: each of them was
// acknowledged (its create committed) before this call returned.
func ackedSessions(t *testing.T, s *boltstore.Store) []string {
	t.Helper()
	open, err := s.OpenSessions(context.Background())
	require.NoError(t, err)
	ids := make([]string, 0, len(open))
	for _, x := range open {
		ids = append(ids, x.ID)
	}
	return ids
}

// TestBackupSizeCallbackCanRefuse: an error from the size callback stops the backup before any
// byte is written.
func TestBackupSizeCallbackCanRefuse(t *testing.T) {
	s := openTemp(t)
	var buf bytes.Buffer
	refused := assert.AnError
	_, err := s.Backup(&buf, func(int64) error { return refused })
	assert.ErrorIs(t, err, refused)
	assert.Zero(t, buf.Len())
}
