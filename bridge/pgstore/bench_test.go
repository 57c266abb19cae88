package pgstore_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
	"github.com/paybridge/paybridge/bridge/pgstore"
	"github.com/paybridge/paybridge/bridge/pgstore/pgtest"
)

// BenchmarkWriters measures CreateSession and UpdateSession (each writer updating a session of
// its own) at 1, 8 and 64 concurrent writers, on PostgreSQL and, in the same run for comparison,
// on bbolt. Pool settings come from the test URL (e.g. ?pool_max_conns=64); pgx's default is
// max(4, cores). Start the cluster with PAYBRIDGE_PG_DURABLE=1 for commits as durable as bbolt's.
func BenchmarkWriters(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) bridge.Store
	}{
		{"bolt", func(b *testing.B) bridge.Store {
			s, err := boltstore.Open(filepath.Join(b.TempDir(), "paybridge.db"), boltstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"pg", func(b *testing.B) bridge.Store {
			s, err := pgstore.Open(b.Context(), pgtest.NewDatabase(b))
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	}
	for _, st := range stores {
		b.Run("store="+st.name, func(b *testing.B) {
			s := st.open(b)
			b.Cleanup(func() { _ = s.Close() })
			for _, op := range []string{"create", "update"} {
				for _, writers := range []int{1, 8, 64} {
					b.Run(fmt.Sprintf("op=%s/writers=%d", op, writers), func(b *testing.B) {
						benchWrites(b, s, op, writers)
					})
				}
			}
		})
	}
}

// benchWrites runs b.N writes of op on s from writers goroutines and reports writes per second.
func benchWrites(b *testing.B, s bridge.Store, op string, writers int) {
	ctx := b.Context()
	// Each writer's own session, created by the writers at once so that a pool has opened its
	// connections before the clock starts.
	own := make([]*bridge.Session, writers)
	setup := make([]error, writers)
	var ready sync.WaitGroup
	for i := range own {
		ready.Go(func() {
			own[i] = testSession(i)
			setup[i] = s.CreateSession(ctx, own[i])
		})
	}
	ready.Wait()
	for _, err := range setup {
		if err != nil {
			b.Fatal(err)
		}
	}
	write := func(w int) error {
		if op == "create" {
			return s.CreateSession(ctx, testSession(w))
		}
		_, err := s.UpdateSession(ctx, own[w].ID, func(c *bridge.Session, _ *bridge.Outbox) error {
			c.UpdatedAt = c.UpdatedAt.Add(time.Second)
			return nil
		})
		return err
	}

	var done atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for w := range writers {
		wg.Go(func() {
			for done.Add(1) <= int64(b.N) {
				if err := write(w); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}
