package boltstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
)

// groupHelperEnv, when set, makes TestGroupHelperProcess the child of TestKill9GroupCommit; its
// value is the database path.
const groupHelperEnv = "BOLTSTORE_GROUP_CRASH_CHILD_DB"

// crashWriters is how many goroutines of the child write at once, so rounds hold many writes.
const crashWriters = 16

// TestGroupHelperProcess is the child of TestKill9GroupCommit: crashWriters goroutines each
// create sessions and restart them, printing "created n" or "restarted n" once the write's
// commit (and fsync) returned, until killed.
func TestGroupHelperProcess(t *testing.T) {
	path := os.Getenv(groupHelperEnv)
	if path == "" {
		t.Skip("runs only as the child process of TestKill9GroupCommit")
	}
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	ctx := context.Background()
	for g := range crashWriters {
		go func() {
			for k := range crashMaxOps / crashWriters {
				n := g + k*crashWriters
				if err := s.CreateSession(ctx, testSession(n, bridge.ModeTest)); err != nil {
					fmt.Println("error", err)
					os.Exit(3)
				}
				// One short line per Println is one write(2) to the pipe: lines never interleave.
				fmt.Println("created", n)
				if _, err := s.UpdateSession(ctx, testSession(n, bridge.ModeTest).ID, restart(n, 2)); err != nil {
					fmt.Println("error", err)
					os.Exit(3)
				}
				fmt.Println("restarted", n)
			}
		}()
	}
	time.Sleep(time.Minute) // a bound, in case nobody kills the child
	os.Exit(5)
}

// TestKill9GroupCommit is TestKill9 with concurrent writers, so that the kill lands in rounds of
// many writes: every write the child reported must be in the reopened file, and every session
// there (reported or not) must be whole, with indexes that agree with it.
func TestKill9GroupCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, reported := range []int{1, 40, 400} {
		t.Run(fmt.Sprintf("after %d writes", reported), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "paybridge.db")
			created, restarted := killGroupChildAfter(t, path, reported)

			s, err := boltstore.Open(path, boltstore.Options{Timeout: 5 * time.Second})
			require.NoError(t, err, "reopen after kill -9")
			t.Cleanup(func() { _ = s.Close() })
			ctx := t.Context()

			open, err := s.OpenSessions(ctx)
			require.NoError(t, err)
			listed := listAll(t, s, "")
			assert.ElementsMatch(t, sessionIDs(open), listed, "every session is open, and listed")
			present := map[string]bool{}
			for _, sess := range open {
				present[sess.ID] = true
			}
			for n := range created {
				assert.True(t, present[testSession(n, bridge.ModeTest).ID], "reported create of %d is missing", n)
			}
			for _, sess := range open {
				var n int
				_, err := fmt.Sscanf(sess.ID, "vp_cs_test_%d", &n)
				require.NoError(t, err, sess.ID)
				want := testSession(n, bridge.ModeTest)
				if sess.Version == 1 {
					require.NoError(t, restart(n, 2)(want, &bridge.Outbox{}))
					want.Version = 1
				} else {
					assert.False(t, restarted[n], "reported restart of %d is missing", n)
				}
				for i := range want.Attempts {
					want.Attempts[i].BearerToken, want.Attempts[i].RefreshToken = "", ""
				}
				assertJSONSame(t, want, sess)
				for _, a := range want.Attempts {
					byGUID, err := s.SessionByGUID(ctx, a.SessionGUID)
					if assert.NoError(t, err, "guid index: %s", a.SessionGUID) {
						assert.Equal(t, sess.ID, byGUID.ID)
					}
				}
				if sess.Version == 0 {
					_, err := s.SessionByGUID(ctx, testGUID(n, 2))
					assert.ErrorIs(t, err, bridge.ErrNotFound, "guid index holds an uncommitted attempt")
				}
			}
			t.Logf("child reported %d writes; the file holds %d sessions", reported, len(open))
		})
	}
}

// killGroupChildAfter starts the child on path, reads until it has reported reported writes,
// kills it with SIGKILL and returns the sessions it reported created and restarted.
func killGroupChildAfter(t *testing.T, path string, reported int) (created, restarted map[int]bool) {
	t.Helper()
	c := startChild(t, "TestGroupHelperProcess", groupHelperEnv, path)
	created, restarted = map[int]bool{}, map[int]bool{}
	deadline := time.After(2 * time.Minute)
	for len(created)+len(restarted) < reported {
		select {
		case line, ok := <-c.lines:
			require.True(t, ok, "the child exited early: %s", c.stderr.String())
			require.False(t, strings.HasPrefix(line, "error"), "child: %s", line)
			var verb string
			var n int
			if _, err := fmt.Sscanf(line, "%s %d", &verb, &n); err != nil {
				continue // the test framework's own output
			}
			switch verb {
			case "created":
				created[n] = true
			case "restarted":
				restarted[n] = true
			}
		case <-deadline:
			t.Fatalf("the child reported %d of %d writes in time: %s", len(created)+len(restarted), reported, c.stderr.String())
		}
	}
	c.kill9(t)
	return created, restarted
}
