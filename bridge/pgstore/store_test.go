package pgstore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/pgstore"
	"github.com/paybridge/paybridge/bridge/pgstore/pgtest"
	"github.com/paybridge/paybridge/bridge/storetest"
)

// openTemp opens a store on a fresh database of its own; the store is closed and the database
// dropped when the test ends.
func openTemp(t testing.TB, opts ...pgstore.Option) (*pgstore.Store, string) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	s, err := pgstore.Open(context.Background(), url, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, url
}

// TestStore runs the conformance suite; every subtest gets a new, empty database.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) bridge.Store {
		s, _ := openTemp(t)
		return s
	})
}

// testEpoch is a fixed "now" for this package's tests.
var testEpoch = time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.UTC)

// testSession returns an active session with one attempt whose tokens are in clear (as the
// service holds them in memory) and sealed.
func testSession(n int) *bridge.Session {
	created := testEpoch.Add(time.Duration(n) * time.Second)
	return &bridge.Session{
		ID:         bridge.NewSessionID(bridge.ModeTest),
		MerchantID: "acme",
		Mode:       bridge.ModeTest,
		AgentID:    fmt.Sprintf("agent-%d", n%3),
		Channel:    bridge.ChannelAgentAssist,
		Amount:     int64(100 + n),
		Currency:   "GBP",
		Status:     bridge.StatusActive,
		CreatedAt:  created,
		UpdatedAt:  created,
		ExpiresAt:  created.Add(30 * time.Minute),
		Attempts: []bridge.Attempt{{
			Number: 1, SessionGUID: "guid-" + bridge.RandomBase62(20), IframeURL: "https://pcipal.example/1",
			BearerToken: "bearer-plaintext-1", RefreshToken: "refresh-plaintext-1", SealedTokens: []byte("sealed-tokens-1"),
			StartedAt: created,
		}},
	}
}

// logBuffer collects a store's log lines, from any goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// appliedVersions reads schema_migrations directly.
func appliedVersions(t *testing.T, url string) []int32 {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	require.NoError(t, err)
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	require.NoError(t, err)
	return versions
}

// allVersions is every embedded version (pgstore.Versions), as schema_migrations holds them.
func allVersions() []int32 {
	var v []int32
	for _, i := range pgstore.Versions() {
		v = append(v, int32(i))
	}
	return v
}

// TestOpenRacingMigratesOnce starts several nodes at once on one empty database, as a deployment
// does after a rollout: every Open succeeds, each migration is applied once, and the stores see
// each other's writes.
func TestOpenRacingMigratesOnce(t *testing.T) {
	require.Positive(t, pgstore.SchemaVersion(), "no migrations embedded")
	for round := range 3 {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			const nodes = 4
			url := pgtest.NewDatabase(t)
			var logs logBuffer
			stores := make([]*pgstore.Store, nodes)
			errs := make([]error, nodes)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range nodes {
				wg.Go(func() {
					<-start
					stores[i], errs[i] = pgstore.Open(t.Context(), url, pgstore.WithLogger(logs.logger()))
				})
			}
			close(start)
			wg.Wait()
			for i := range nodes {
				require.NoError(t, errs[i], "node %d", i)
				t.Cleanup(func() { _ = stores[i].Close() })
			}

			assert.Equal(t, len(pgstore.Versions()), strings.Count(logs.String(), "migration applied"),
				"each migration is applied by exactly one node:\n%s", logs.String())
			assert.Equal(t, nodes, strings.Count(logs.String(), "store opened"))
			assert.Equal(t, allVersions(), appliedVersions(t, url))

			sess := testSession(round)
			require.NoError(t, stores[0].CreateSession(t.Context(), sess))
			for i, s := range stores {
				got, err := s.Session(t.Context(), sess.ID)
				if assert.NoError(t, err, "node %d", i) {
					assert.Equal(t, sess.ID, got.ID)
				}
			}
		})
	}
}

// TestReopenMigratesNothing: a database already at the newest version is opened without a
// migration, and what was written survives.
func TestReopenMigratesNothing(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var first logBuffer
	s, err := pgstore.Open(t.Context(), url, pgstore.WithLogger(first.logger()))
	require.NoError(t, err)
	assert.Equal(t, len(pgstore.Versions()), strings.Count(first.String(), "migration applied"))
	sess := testSession(1)
	require.NoError(t, s.CreateSession(t.Context(), sess))
	require.NoError(t, s.Close())
	assert.Error(t, s.Ping(t.Context()), "Ping after Close")

	var second logBuffer
	s, err = pgstore.Open(t.Context(), url, pgstore.WithLogger(second.logger()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	assert.NotContains(t, second.String(), "migration applied")
	assert.Contains(t, second.String(), fmt.Sprintf("schemaVersion=%d", pgstore.SchemaVersion()))
	got, err := s.Session(t.Context(), sess.ID)
	require.NoError(t, err)
	assert.Equal(t, sess.Amount, got.Amount)
	assert.Equal(t, allVersions(), appliedVersions(t, url))
}

// TestOpenRefusesNewerSchema: a database a newer paybridge migrated is refused and left as it is.
func TestOpenRefusesNewerSchema(t *testing.T) {
	tests := []struct {
		name    string
		version int
	}{
		{"next", pgstore.SchemaVersion() + 1},
		{"much newer", 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, url := openTemp(t)
			require.NoError(t, s.Close())
			conn, err := pgx.Connect(t.Context(), url)
			require.NoError(t, err)
			defer conn.Close(context.Background())
			_, err = conn.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')`, tc.version)
			require.NoError(t, err)

			s, err = pgstore.Open(t.Context(), url)
			if s != nil {
				_ = s.Close()
			}
			require.ErrorIs(t, err, pgstore.ErrSchema)
			assert.Contains(t, err.Error(), fmt.Sprint(tc.version))
			assert.Equal(t, append(allVersions(), int32(tc.version)), appliedVersions(t, url), "a refused database was changed")
		})
	}
}

// TestOpenErrorsHideThePassword: a bad URL or an unreachable server fails Open, and the error
// never repeats the password.
func TestOpenErrorsHideThePassword(t *testing.T) {
	const password = "s3cret-Passw0rd"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedPort := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close()) // nothing listens there now: connections are refused

	tests := []struct {
		name string
		url  string
	}{
		{"unreachable", fmt.Sprintf("postgres://paybridge:%s@127.0.0.1:%d/paybridge?sslmode=disable&connect_timeout=5", password, closedPort)},
		{"malformed", fmt.Sprintf("postgres://paybridge:%s@127.0.0.1:notaport/paybridge", password)},
		{"bad parameter", fmt.Sprintf("postgres://paybridge:%s@127.0.0.1/paybridge?pool_max_conns=many", password)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := pgstore.Open(t.Context(), tc.url)
			if s != nil {
				_ = s.Close()
			}
			require.Error(t, err)
			assert.NotContains(t, err.Error(), password)
		})
	}
}

// TestNothingSecretInClear writes sessions with provider tokens in memory and checks every table
// of the database: the tokens are there only sealed, as the session's JSON form carries them.
func TestNothingSecretInClear(t *testing.T) {
	// The test cluster trusts 127.0.0.1, so a password in the URL is accepted (and ignored): it
	// is here to check that the store's log never repeats it.
	const password = "pg-password-in-url"
	u, err := neturl.Parse(pgtest.NewDatabase(t))
	require.NoError(t, err)
	u.User = neturl.UserPassword(u.User.Username(), password)
	url := u.String()
	var logs logBuffer
	s, err := pgstore.Open(t.Context(), url, pgstore.WithLogger(logs.logger()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	sess := testSession(1)
	require.NoError(t, s.CreateSession(ctx, sess))
	updated, err := s.UpdateSession(ctx, sess.ID, func(c *bridge.Session, out *bridge.Outbox) error {
		c.Current().EndedAt, c.Current().EndReason = testEpoch.Add(time.Minute), bridge.EndFrameRefused
		c.Attempts = append(c.Attempts, bridge.Attempt{
			Number: 2, SessionGUID: "guid-" + bridge.RandomBase62(20),
			BearerToken: "bearer-plaintext-2", RefreshToken: "refresh-plaintext-2", SealedTokens: []byte("sealed-tokens-2"),
			StartedAt: testEpoch.Add(time.Minute),
		})
		if err := c.SetStatus(bridge.StatusSucceeded, testEpoch.Add(2*time.Minute)); err != nil {
			return err
		}
		out.Add(&bridge.OutboxMessage{ID: bridge.NewEventID(), MerchantID: "acme", Type: bridge.EventSucceeded,
			Payload: []byte(`{"ok":true}`), CreatedAt: testEpoch, NextAttemptAt: testEpoch})
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, "bearer-plaintext-2", updated.Current().BearerToken, "the caller's copy keeps its tokens")
	plainKey, key := bridge.NewAPIKey("acme", bridge.KeySecret, bridge.ModeTest, testEpoch)
	require.NoError(t, s.CreateAPIKey(ctx, key))

	dump := dumpTables(t, url)
	for _, sealed := range []string{"sealed-tokens-1", "sealed-tokens-2"} {
		assert.Contains(t, dump, base64.StdEncoding.EncodeToString([]byte(sealed)), "the sealed tokens are stored")
	}
	require.NoError(t, s.Close())
	assert.Contains(t, logs.String(), "store opened")
	assert.NotContains(t, logs.String(), password, "the connection password reached the log")
	for _, secret := range []string{"bearer-plaintext-1", "refresh-plaintext-1", "bearer-plaintext-2", "refresh-plaintext-2", plainKey} {
		assert.NotContains(t, dump, secret, "a secret is in the database in clear")
		assert.NotContains(t, logs.String(), secret, "a secret reached the log")
	}
	assert.Contains(t, dump, key.Hash, "the key is stored by its hash")
}

// dumpTables returns every row of every table of the database as text.
func dumpTables(t *testing.T, url string) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), `SELECT quote_ident(table_name) FROM information_schema.tables WHERE table_schema = 'public'`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Contains(t, tables, "sessions")
	var dump strings.Builder
	for _, table := range tables {
		rows, err := conn.Query(t.Context(), `SELECT t::text FROM `+table+` t`)
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		for _, l := range lines {
			dump.WriteString(table + ": " + l + "\n")
		}
	}
	return dump.String()
}

// TestAwkwardValuesRoundTrip stores what PostgreSQL's text types refuse: U+0000 in a metadata
// value (the API allows it) and NUL bytes in an idempotency key (web joins its scope with them).
func TestAwkwardValuesRoundTrip(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	sess := testSession(1)
	sess.Metadata = map[string]string{"nul": "a\x00b", "quote": `"';--`, "emoji": "💳"}
	require.NoError(t, s.CreateSession(ctx, sess))
	got, err := s.Session(ctx, sess.ID)
	require.NoError(t, err)
	assert.Equal(t, sess.Metadata, got.Metadata)

	key := "acme\x00test\x00key_1\x00\x00order-1"
	for _, k := range []string{key, "acme\x00test\x00key_1\x00agent-1\x00order-1"} {
		existing, err := s.ReserveIdempotency(ctx, &bridge.IdempotencyRecord{Key: k, RequestHash: "hash-1", CreatedAt: testEpoch, ExpiresAt: testEpoch.Add(time.Hour)})
		require.NoError(t, err)
		require.Nil(t, existing, "keys differing after a NUL are different keys")
	}
	rec, err := s.IdempotencyRecord(ctx, key, testEpoch)
	require.NoError(t, err)
	assert.Equal(t, key, rec.Key)
	assert.Equal(t, "hash-1", rec.RequestHash)
}

// TestUpdateSessionAcrossNodes updates one session from several stores (nodes) on one database
// at once: the row lock serialises them, so no update is lost and each sees the one before.
func TestUpdateSessionAcrossNodes(t *testing.T) {
	const (
		nodes   = 3
		updates = 10 // per node
	)
	first, url := openTemp(t)
	stores := []*pgstore.Store{first}
	for range nodes - 1 {
		s, err := pgstore.Open(t.Context(), url)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		stores = append(stores, s)
	}
	sess := testSession(1)
	require.NoError(t, first.CreateSession(t.Context(), sess))

	var wg sync.WaitGroup
	errs := make(chan error, nodes*updates)
	for _, s := range stores {
		wg.Go(func() {
			for range updates {
				_, err := s.UpdateSession(t.Context(), sess.ID, func(c *bridge.Session, _ *bridge.Outbox) error {
					c.Amount++
					return nil
				})
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for i, s := range stores {
		got, err := s.Session(t.Context(), sess.ID)
		require.NoError(t, err)
		assert.Equal(t, sess.Amount+nodes*updates, got.Amount, "node %d: an update was lost", i)
		assert.Equal(t, int64(nodes*updates), got.Version, "node %d", i)
	}
}
