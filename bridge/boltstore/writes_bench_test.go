package boltstore_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
)

// storeCommits, when set (by the group commit's tests), reads the store's commit count, so the
// benchmark can report writes per transaction. This file also runs unchanged against a store
// without group commit, where it stays nil.
var storeCommits func(*boltstore.Store) (commits, writes uint64)

// BenchmarkWrites measures the store's durable write throughput with 1, 8 and 64 writers at
// once, each write a CreateSession (the first commit of every create) in its own call. Run:
//
//	go test ./bridge/boltstore -run '^$' -bench Writes -benchtime 2000x -count 3
func BenchmarkWrites(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := openTemp(b)
			var c0 uint64
			if storeCommits != nil {
				c0, _ = storeCommits(s)
			}
			var next atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range writers {
				wg.Go(func() {
					for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
						if err := s.CreateSession(b.Context(), testSession(int(n), bridge.ModeTest)); err != nil {
							failed.CompareAndSwap(nil, err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
			if storeCommits != nil {
				c, _ := storeCommits(s)
				b.ReportMetric(float64(b.N)/float64(c-c0), "writes/commit")
			}
		})
	}
}
