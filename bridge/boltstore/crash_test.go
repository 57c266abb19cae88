package boltstore_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
)

// helperEnv, when set, makes TestHelperProcess the child of TestKill9; its value is the
// database path.
const helperEnv = "BOLTSTORE_CRASH_CHILD_DB"

// The child's writes: three per session, forever (until killed). Write op touches session
// op/crashStepsPerSession: step 0 creates it, step 1 restarts it (attempt 2), step 2 makes even
// sessions succeed (with a webhook in the outbox) and odd ones restart again (attempt 3).
const (
	crashStepsPerSession = 3
	crashMaxOps          = 100_000 // a bound, in case nobody kills the child
)

// crashWrite performs write op on s.
func crashWrite(ctx context.Context, s bridge.Store, op int) error {
	n, step := op/crashStepsPerSession, op%crashStepsPerSession
	id := testSession(n, bridge.ModeTest).ID
	var err error
	switch {
	case step == 0:
		err = s.CreateSession(ctx, testSession(n, bridge.ModeTest))
	case step == 1:
		_, err = s.UpdateSession(ctx, id, restart(n, 2))
	case n%2 == 0:
		_, err = s.UpdateSession(ctx, id, succeed(n))
	default:
		_, err = s.UpdateSession(ctx, id, restart(n, 3))
	}
	return err
}

// crashWorld is what the store must hold after the first ops writes, computed in memory.
type crashWorld struct {
	sessions []*bridge.Session // in creation order
	outbox   []*bridge.OutboxMessage
}

func expectCrashWorld(t *testing.T, ops int) crashWorld {
	var w crashWorld
	for op := range ops {
		n, step := op/crashStepsPerSession, op%crashStepsPerSession
		if step == 0 {
			sess := testSession(n, bridge.ModeTest)
			for i := range sess.Attempts {
				sess.Attempts[i].BearerToken, sess.Attempts[i].RefreshToken = "", ""
			}
			w.sessions = append(w.sessions, sess)
			continue
		}
		fn := restart(n, 2)
		switch {
		case step == 2 && n%2 == 0:
			fn = succeed(n)
		case step == 2:
			fn = restart(n, 3)
		}
		var out bridge.Outbox
		require.NoError(t, fn(w.sessions[n], &out))
		w.sessions[n].Version++
		w.outbox = append(w.outbox, out.Messages()...)
	}
	return w
}

// TestHelperProcess is the child of TestKill9: it writes until it is killed, printing
// "ready <op>" after each write has committed.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("runs only as the child process of TestKill9")
	}
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	for op := range crashMaxOps {
		if err := crashWrite(context.Background(), s, op); err != nil {
			fmt.Println("error", err)
			os.Exit(3)
		}
		// Unbuffered: the parent reads this as soon as the commit (and its fsync) returned.
		if _, err := fmt.Printf("ready %d\n", op); err != nil {
			os.Exit(4) // the parent is gone
		}
	}
	time.Sleep(time.Minute)
	os.Exit(5)
}

// TestKill9 runs the writer in a child process, kills it with SIGKILL after it has reported some
// committed writes, and checks that the reopened file holds every reported write and that its
// indexes agree with its records.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, reported := range []int{1, 2, 3, 17, 61} {
		t.Run(fmt.Sprintf("after %d writes", reported), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "paybridge.db")
			killChildAfter(t, path, reported)

			s, err := boltstore.Open(path, boltstore.Options{Timeout: 5 * time.Second})
			require.NoError(t, err, "reopen after kill -9")
			t.Cleanup(func() { _ = s.Close() })
			committed := committedOps(t, s)
			require.GreaterOrEqual(t, committed, reported, "a write reported as committed is missing")
			t.Logf("child reported %d writes, %d committed", reported, committed)
			checkCrashWorld(t, s, expectCrashWorld(t, committed))
		})
	}
}

// killChildAfter starts the child on path, reads until it has reported reported writes and kills
// it with SIGKILL.
func killChildAfter(t *testing.T, path string, reported int) {
	t.Helper()
	child := startChild(t, "TestHelperProcess", helperEnv, path)
	deadline := time.After(2 * time.Minute)
	for next := 0; next < reported; {
		select {
		case line, ok := <-child.lines:
			require.True(t, ok, "the child exited early: %s", child.stderr.String())
			rest, isReady := strings.CutPrefix(line, "ready ")
			require.False(t, strings.HasPrefix(line, "error"), "child: %s", line)
			if !isReady {
				continue // the test framework's own output
			}
			op, err := strconv.Atoi(rest)
			require.NoError(t, err, line)
			require.Equal(t, next, op, "the child reports writes in order")
			next++
		case <-deadline:
			t.Fatalf("the child reported %d of %d writes in time: %s", next, reported, child.stderr.String())
		}
	}
	// The child is still writing: the kill lands wherever it lands, often mid-transaction.
	child.kill9(t)
}

// child is a test binary re-run as a helper process that reports its writes on stdout.
type child struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *lockedBuffer
	killed bool
}

// startChild runs the test binary's helper test on the store at path (passed in env), its
// stdout lines on child.lines; it is killed when t ends if nothing killed it before.
func startChild(t *testing.T, helperTest, env, path string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^"+helperTest+"$", "-test.count=1"), lines: make(chan string), stderr: &lockedBuffer{}}
	c.cmd.Env = append(os.Environ(), env+"="+path)
	c.cmd.Stderr = c.stderr // os/exec copies into it from its own goroutine
	stdout, err := c.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, c.cmd.Start())
	t.Cleanup(func() {
		if !c.killed {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	return c
}

// kill9 kills the child with SIGKILL and requires that this is how it ended.
func (c *child) kill9(t *testing.T) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	c.killed = true
	for range c.lines { // drain, so Wait does not close the pipe under the reader
	}
	err := c.cmd.Wait()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "the child was not killed: %v", err)
	status, ok := exit.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	require.True(t, status.Signaled() && status.Signal() == syscall.SIGKILL, "the child ended by %v, not SIGKILL", err)
}

// lockedBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// committedOps works out from the store how many of the child's writes committed: writes are
// sequential, so it is the writes of every session before the last plus the last one's.
func committedOps(t *testing.T, s *boltstore.Store) int {
	t.Helper()
	n := 0
	for {
		_, err := s.Session(t.Context(), testSession(n, bridge.ModeTest).ID)
		if errors.Is(err, bridge.ErrNotFound) {
			break
		}
		require.NoError(t, err)
		n++
	}
	if n == 0 {
		return 0
	}
	last, err := s.Session(t.Context(), testSession(n-1, bridge.ModeTest).ID)
	require.NoError(t, err)
	return (n-1)*crashStepsPerSession + int(last.Version) + 1
}

// checkCrashWorld asserts that s holds exactly want, through every read path and index.
func checkCrashWorld(t *testing.T, s *boltstore.Store, want crashWorld) {
	t.Helper()
	ctx := t.Context()
	var openIDs, succeededIDs []string
	for n, w := range want.sessions {
		got, err := s.Session(ctx, w.ID)
		require.NoError(t, err)
		assertJSONSame(t, w, got)
		for _, a := range w.Attempts {
			byGUID, err := s.SessionByGUID(ctx, a.SessionGUID)
			if assert.NoError(t, err, "guid index: %s", a.SessionGUID) {
				assert.Equal(t, w.ID, byGUID.ID)
			}
		}
		for attempt := len(w.Attempts) + 1; attempt <= 3; attempt++ {
			_, err := s.SessionByGUID(ctx, testGUID(n, attempt))
			assert.ErrorIs(t, err, bridge.ErrNotFound, "guid index holds an uncommitted attempt")
		}
		if w.Status.Terminal() {
			succeededIDs = append(succeededIDs, w.ID)
		} else {
			openIDs = append(openIDs, w.ID)
		}
	}
	_, err := s.SessionByGUID(ctx, testGUID(len(want.sessions), 1))
	assert.ErrorIs(t, err, bridge.ErrNotFound, "guid index holds an uncommitted session")

	open, err := s.OpenSessions(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, openIDs, sessionIDs(open), "open set")

	// Newest first: CreatedAt pairs tie, and the higher id wins a tie.
	var all []string
	for i := len(want.sessions) - 1; i >= 0; i-- {
		all = append(all, want.sessions[i].ID)
	}
	assert.Equal(t, all, listAll(t, s, ""), "list order")
	slices.Reverse(succeededIDs)
	assert.Equal(t, succeededIDs, listAll(t, s, bridge.StatusSucceeded), "list by status")

	due, err := s.DueOutbox(ctx, testEpoch.Add(1000*time.Hour), 1000)
	require.NoError(t, err)
	if assert.Len(t, due, len(want.outbox), "outbox due") {
		for i, m := range want.outbox {
			assertJSONSame(t, m, due[i])
		}
	}
}

// listAll walks every page of acme's test sessions with status (or any).
func listAll(t *testing.T, s *boltstore.Store, status bridge.Status) []string {
	t.Helper()
	var out []string
	cursor := ""
	for {
		page, err := s.ListSessions(t.Context(), bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest, Status: status, Limit: 7, StartingAfter: cursor})
		require.NoError(t, err)
		out = append(out, sessionIDs(page)...)
		if len(page) < 7 {
			return out
		}
		cursor = page[len(page)-1].ID
	}
}

// sessionIDs returns the ids of sessions, in order.
func sessionIDs(sessions []*bridge.Session) []string {
	var out []string
	for _, s := range sessions {
		out = append(out, s.ID)
	}
	return out
}
