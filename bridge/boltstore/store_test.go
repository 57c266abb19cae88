package boltstore_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
	"github.com/paybridge/paybridge/bridge/storetest"
)

// openTemp opens a store in a fresh temporary directory and closes it when the test ends.
func openTemp(t testing.TB) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "data", "paybridge.db"), boltstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) bridge.Store { return openTemp(t) })
}

// testEpoch is a fixed "now" for this package's tests.
var testEpoch = time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.UTC)

// testSession returns an active session with one attempt; n makes it unique and orders it.
func testSession(n int, mode bridge.Mode) *bridge.Session {
	created := testEpoch.Add(time.Duration(n/2) * time.Second) // pairs share a CreatedAt
	return &bridge.Session{
		ID:         fmt.Sprintf("vp_cs_%s_%016d", mode, n),
		MerchantID: "acme",
		Mode:       mode,
		AgentID:    fmt.Sprintf("agent-%d", n%3),
		Channel:    bridge.ChannelAgentAssist,
		Amount:     int64(100 + n),
		Currency:   "GBP",
		Status:     bridge.StatusActive,
		CreatedAt:  created,
		UpdatedAt:  created,
		ExpiresAt:  created.Add(30 * time.Minute),
		Attempts: []bridge.Attempt{{
			Number: 1, SessionGUID: testGUID(n, 1), IframeURL: "https://pcipal.example/1",
			BearerToken: "bearer-plaintext", RefreshToken: "refresh-plaintext", SealedTokens: []byte("sealed"),
			StartedAt: created,
		}},
	}
}

// testGUID is the VCC session guid of attempt of session n.
func testGUID(n, attempt int) string { return fmt.Sprintf("guid-%06d-%d", n, attempt) }

// restart ends the current attempt and starts attempt number next, as the service does.
func restart(n, next int) func(*bridge.Session, *bridge.Outbox) error {
	return func(s *bridge.Session, _ *bridge.Outbox) error {
		at := s.CreatedAt.Add(time.Duration(next) * time.Minute)
		s.Current().EndedAt, s.Current().EndReason = at, bridge.EndFrameRefused
		s.Attempts = append(s.Attempts, bridge.Attempt{Number: next, SessionGUID: testGUID(n, next), SealedTokens: []byte("sealed"), StartedAt: at})
		s.UpdatedAt = at
		return nil
	}
}

// succeed ends session n with a payment and queues its merchant webhook.
func succeed(n int) func(*bridge.Session, *bridge.Outbox) error {
	return func(s *bridge.Session, out *bridge.Outbox) error {
		at := s.CreatedAt.Add(10 * time.Minute)
		if err := s.SetStatus(bridge.StatusSucceeded, at); err != nil {
			return err
		}
		s.Result = &bridge.Result{Decision: bridge.DecisionAccept, ReasonCode: "100", TransactionID: fmt.Sprintf("tx-%d", n)}
		out.Add(&bridge.OutboxMessage{
			ID: fmt.Sprintf("vp_evt_%024d", n), MerchantID: s.MerchantID, Type: bridge.EventSucceeded,
			Payload: fmt.Appendf(nil, `{"id":"vp_evt_%024d"}`, n), CreatedAt: at, NextAttemptAt: at,
		})
		return nil
	}
}

// assertJSONSame asserts want and got have the same stored form.
func assertJSONSame(t *testing.T, want, got any) {
	t.Helper()
	w, err := json.Marshal(want)
	require.NoError(t, err)
	g, err := json.Marshal(got)
	require.NoError(t, err)
	assert.JSONEq(t, string(w), string(g))
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "data")
	path := filepath.Join(dir, "paybridge.db")
	s, err := boltstore.Open(path, boltstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	assert.Equal(t, path, s.Path())

	for _, tc := range []struct {
		path string
		mode os.FileMode
	}{
		{filepath.Dir(dir), 0o700},
		{dir, 0o700},
		{path, 0o600},
	} {
		info, err := os.Stat(tc.path)
		require.NoError(t, err)
		assert.Equal(t, tc.mode, info.Mode().Perm(), tc.path)
	}
	assert.NoError(t, s.Ping(t.Context()))
}

// TestReopen writes one of everything, closes the store, opens the file again and finds it all,
// indexes included.
func TestReopen(t *testing.T) {
	var logs bytes.Buffer
	opts := boltstore.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	path := filepath.Join(t.TempDir(), "paybridge.db")
	s, err := boltstore.Open(path, opts)
	require.NoError(t, err)
	ctx := t.Context()

	var sessions []*bridge.Session
	for n := range 6 {
		sess := testSession(n, bridge.ModeTest)
		require.NoError(t, s.CreateSession(ctx, sess))
		sessions = append(sessions, sess)
	}
	want := map[string]*bridge.Session{}
	for n, sess := range sessions {
		cur := sess
		if n%2 == 0 {
			cur, err = s.UpdateSession(ctx, sess.ID, restart(n, 2))
			require.NoError(t, err)
		}
		if n%3 == 0 {
			cur, err = s.UpdateSession(ctx, sess.ID, succeed(n))
			require.NoError(t, err)
		}
		want[sess.ID] = cur
	}
	plainKey, key := bridge.NewAPIKey("acme", bridge.KeySecret, bridge.ModeTest, testEpoch)
	require.NoError(t, s.CreateAPIKey(ctx, key))
	rec := &bridge.IdempotencyRecord{Key: "acme/test/k", RequestHash: "h", CreatedAt: testEpoch, ExpiresAt: testEpoch.Add(24 * time.Hour)}
	_, err = s.ReserveIdempotency(ctx, rec)
	require.NoError(t, err)
	require.NoError(t, s.CompleteIdempotency(ctx, rec.Key, 201, []byte(`{"ok":true}`)))

	require.NoError(t, s.Close())
	assert.Error(t, s.Ping(ctx), "Ping after Close")

	s, err = boltstore.Open(path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	for _, sess := range sessions {
		got, err := s.Session(ctx, sess.ID)
		require.NoError(t, err)
		w := want[sess.ID].Clone()
		for i := range w.Attempts {
			w.Attempts[i].BearerToken, w.Attempts[i].RefreshToken = "", ""
		}
		assertJSONSame(t, w, got)
		assert.Equal(t, want[sess.ID].Version, got.Version)
		for _, a := range w.Attempts {
			byGUID, err := s.SessionByGUID(ctx, a.SessionGUID)
			if assert.NoError(t, err) {
				assert.Equal(t, sess.ID, byGUID.ID)
			}
		}
	}
	open, err := s.OpenSessions(ctx)
	require.NoError(t, err)
	var openIDs []string
	for _, o := range open {
		openIDs = append(openIDs, o.ID)
	}
	assert.ElementsMatch(t, []string{sessions[1].ID, sessions[2].ID, sessions[4].ID, sessions[5].ID}, openIDs)
	list, err := s.ListSessions(ctx, bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest})
	require.NoError(t, err)
	var listed []string
	for _, l := range list {
		listed = append(listed, l.ID)
	}
	assert.Equal(t, []string{sessions[5].ID, sessions[4].ID, sessions[3].ID, sessions[2].ID, sessions[1].ID, sessions[0].ID}, listed)
	due, err := s.DueOutbox(ctx, testEpoch.Add(time.Hour), 10)
	require.NoError(t, err)
	if assert.Len(t, due, 2) {
		assert.Equal(t, "vp_evt_000000000000000000000000", due[0].ID)
		assert.Equal(t, "vp_evt_000000000000000000000003", due[1].ID)
	}
	gotKey, err := s.APIKeyByHash(ctx, bridge.HashSecret(plainKey))
	require.NoError(t, err)
	assertJSONSame(t, key, gotKey)
	gotRec, err := s.IdempotencyRecord(ctx, rec.Key, testEpoch)
	require.NoError(t, err)
	assert.True(t, gotRec.Done)
	assert.Equal(t, []byte(`{"ok":true}`), gotRec.Body)

	assert.Contains(t, logs.String(), "store opened")
	for _, secret := range []string{"bearer-plaintext", "refresh-plaintext", plainKey, key.Hash} {
		assert.NotContains(t, logs.String(), secret, "a secret reached the log")
	}
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, secret := range []string{"bearer-plaintext", "refresh-plaintext", plainKey} {
		assert.False(t, bytes.Contains(raw, []byte(secret)), "%q is in the database file", secret)
	}
}

func TestOpenLockedFileTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "paybridge.db")
	first, err := boltstore.Open(path, boltstore.Options{})
	require.NoError(t, err)

	type opened struct {
		s   *boltstore.Store
		err error
	}
	done := make(chan opened, 1)
	go func() {
		s, err := boltstore.Open(path, boltstore.Options{Timeout: 100 * time.Millisecond})
		done <- opened{s, err}
	}()
	select {
	case o := <-done:
		if o.s != nil {
			_ = o.s.Close()
		}
		require.ErrorIs(t, o.err, boltstore.ErrLocked)
		assert.Contains(t, o.err.Error(), path, "the error names the file")
		assert.Contains(t, o.err.Error(), "another paybridge", "the error says what to check")
	case <-time.After(10 * time.Second):
		t.Fatal("Open of a locked file did not give up")
	}

	require.NoError(t, first.Close())
	again, err := boltstore.Open(path, boltstore.Options{Timeout: 100 * time.Millisecond})
	require.NoError(t, err, "the lock is released by Close")
	require.NoError(t, again.Close())
}

func TestOpenRefusesUnknownSchema(t *testing.T) {
	tests := []struct {
		name    string
		version string
	}{
		{"newer", fmt.Sprint(boltstore.SchemaVersion + 1)},
		{"much newer", "1000"},
		{"garbage", "v1"},
		{"empty", ""},
		{"zero", "0"},
		{"negative", "-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "paybridge.db")
			s, err := boltstore.Open(path, boltstore.Options{})
			require.NoError(t, err)
			require.NoError(t, s.CreateSession(t.Context(), testSession(1, bridge.ModeTest)))
			require.NoError(t, s.Close())
			setSchemaVersion(t, path, tc.version)

			s, err = boltstore.Open(path, boltstore.Options{})
			if s != nil {
				_ = s.Close()
			}
			require.ErrorIs(t, err, boltstore.ErrSchema)
			assert.Contains(t, err.Error(), path)
			assert.Equal(t, tc.version, schemaVersion(t, path), "a refused file was changed")
		})
	}

	t.Run("missing meta bucket is a new file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "paybridge.db")
		db, err := bolt.Open(path, 0o600, nil)
		require.NoError(t, err)
		require.NoError(t, db.Close())
		s, err := boltstore.Open(path, boltstore.Options{})
		require.NoError(t, err)
		require.NoError(t, s.Close())
		assert.Equal(t, fmt.Sprint(boltstore.SchemaVersion), schemaVersion(t, path))
	})

	t.Run("not a bbolt file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "paybridge.db")
		require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte("not a database "), 1000), 0o600))
		s, err := boltstore.Open(path, boltstore.Options{})
		if s != nil {
			_ = s.Close()
		}
		require.Error(t, err)
		assert.Contains(t, err.Error(), path)
	})
}

// setSchemaVersion writes version into the file's meta bucket with bbolt directly.
func setSchemaVersion(t *testing.T, path, version string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schemaVersion"), []byte(version))
	}))
}

// schemaVersion reads the file's schema version with bbolt directly.
func schemaVersion(t *testing.T, path string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	var v string
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		v = string(tx.Bucket([]byte("meta")).Get([]byte("schemaVersion")))
		return nil
	}))
	return v
}

func BenchmarkCreateSession(b *testing.B) {
	s := openTemp(b)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := s.CreateSession(b.Context(), testSession(n, bridge.ModeTest)); err != nil {
			b.Fatal(err)
		}
		n++
	}
}

func BenchmarkUpdateSession(b *testing.B) {
	s := openTemp(b)
	sess := testSession(0, bridge.ModeTest)
	if err := s.CreateSession(b.Context(), sess); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, err := s.UpdateSession(b.Context(), sess.ID, func(c *bridge.Session, _ *bridge.Outbox) error {
			c.UpdatedAt = c.UpdatedAt.Add(time.Second)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
