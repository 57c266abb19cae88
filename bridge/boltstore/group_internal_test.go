package boltstore

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkLoneWriteOverhead compares a lone writer's write through the group with a plain
// db.Update, fsync off so that only the group's own cost shows. Run:
//
//	go test ./bridge/boltstore -run '^$' -bench LoneWriteOverhead -count 6
func BenchmarkLoneWriteOverhead(b *testing.B) {
	for _, tc := range []struct {
		name  string
		write func(g *group, fn func(*bolt.Tx) error) error
	}{
		{"db.Update", func(g *group, fn func(*bolt.Tx) error) error { return g.db.Update(fn) }},
		{"group", func(g *group, fn func(*bolt.Tx) error) error { return g.update(context.Background(), fn) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			db, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), 0o600, &bolt.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			g := &group{db: db}
			if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n++
				key := []byte(strconv.Itoa(n))
				if err := tc.write(g, func(tx *bolt.Tx) error { return tx.Bucket([]byte("b")).Put(key, key) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
