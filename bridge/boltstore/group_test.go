package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
)

// outcome is how one queued call ended: returned (with err), panicked, or neither (Goexit).
type outcome struct {
	err      error
	panicked any
	returned bool
}

// holdWriter makes s's writer busy: it starts an update of its own session whose function waits,
// so the calls queued next form one round when release is called. It returns release.
func holdWriter(t *testing.T, s *boltstore.Store) (release func()) {
	t.Helper()
	sess := testSession(900, bridge.ModeTest)
	require.NoError(t, s.CreateSession(t.Context(), sess))
	entered, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		_, err := s.UpdateSession(context.Background(), sess.ID, func(*bridge.Session, *bridge.Outbox) error {
			once.Do(func() { close(entered) })
			<-gate
			return nil
		})
		done <- err
	}()
	<-entered
	var released sync.Once
	release = func() {
		released.Do(func() {
			close(gate)
			assert.NoError(t, <-done, "the held write")
		})
	}
	t.Cleanup(release) // a failed require must not leave the writer held
	return release
}

// queue starts each call in its own goroutine, in order, each only once the one before waits in
// s's queue, so the round runs them in this order (the first leads it).
func queue(t *testing.T, s *boltstore.Store, calls ...func() error) []chan outcome {
	t.Helper()
	outs := make([]chan outcome, len(calls))
	for i, call := range calls {
		outs[i] = make(chan outcome, 1)
		go func() {
			var o outcome
			defer func() {
				o.panicked = recover()
				outs[i] <- o
			}()
			o.err = call()
			o.returned = true
		}()
		require.Eventually(t, func() bool { return boltstore.Queued(s) == i+1 }, 10*time.Second, time.Millisecond, "call %d never queued", i)
	}
	return outs
}

// wait returns the outcome of a queued call.
func wait(t *testing.T, out chan outcome) outcome {
	t.Helper()
	select {
	case o := <-out:
		return o
	case <-time.After(30 * time.Second):
		t.Fatal("a queued write never finished: the queue is wedged")
		return outcome{}
	}
}

// commitsSince returns the transactions and writes committed since the counts before.
func commitsSince(s *boltstore.Store, commits, writes uint64) (uint64, uint64) {
	c, w := boltstore.Commits(s)
	return c - commits, w - writes
}

func TestGroupCommitSharesOneTransaction(t *testing.T) {
	for _, queued := range []int{1, 2, 16, 200} {
		t.Run(fmt.Sprint(queued), func(t *testing.T) {
			s := openTemp(t)
			release := holdWriter(t, s)
			c0, w0 := boltstore.Commits(s)
			calls := make([]func() error, queued)
			for i := range calls {
				calls[i] = func() error { return s.CreateSession(context.Background(), testSession(i, bridge.ModeTest)) }
			}
			outs := queue(t, s, calls...)
			release()
			for i, out := range outs {
				assert.NoError(t, wait(t, out).err, "write %d", i)
			}
			commits, writes := commitsSince(s, c0, w0)
			assert.Equal(t, uint64(queued+1), writes, "the held write and the queued ones")
			// One for the held write, then the queue in rounds of at most 128.
			assert.Equal(t, uint64(1+(queued+127)/128), commits, "transactions")
			for i := range queued {
				_, err := s.Session(t.Context(), testSession(i, bridge.ModeTest).ID)
				assert.NoError(t, err, "session %d", i)
			}
		})
	}
}

// TestGroupCommitMemberFailsAlone puts one failing write first (it leads the round), in the
// middle or last among good writes of every kind, and checks it fails with its own error, leaves
// nothing behind, and costs the others nothing.
func TestGroupCommitMemberFailsAlone(t *testing.T) {
	errBoom := errors.New("boom")
	failures := []struct {
		name string
		// call is the failing write, on a store holding sessions 0..9 (9 succeeded, with
		// vp_evt_..09 in its outbox). It must run ran each time its function runs.
		call  func(ctx context.Context, s *boltstore.Store, ran *atomic.Int32) error
		check func(t *testing.T, o outcome, ran int32)
		// cancel cancels the call's context once it is queued.
		cancel bool
	}{{
		name: "fn error after changing its copy and adding a webhook",
		call: func(ctx context.Context, s *boltstore.Store, ran *atomic.Int32) error {
			_, err := s.UpdateSession(ctx, testSession(5, bridge.ModeTest).ID, func(x *bridge.Session, out *bridge.Outbox) error {
				ran.Add(1)
				if err := succeed(5)(x, out); err != nil {
					return err
				}
				return errBoom
			})
			return err
		},
		check: func(t *testing.T, o outcome, ran int32) {
			assert.ErrorIs(t, o.err, errBoom, "fn's error, unchanged")
			assert.Equal(t, int32(1), ran)
		},
	}, {
		name: "outbox conflict after the session was put in the transaction",
		call: func(ctx context.Context, s *boltstore.Store, ran *atomic.Int32) error {
			_, err := s.UpdateSession(ctx, testSession(5, bridge.ModeTest).ID, func(x *bridge.Session, out *bridge.Outbox) error {
				ran.Add(1)
				if err := restart(5, 2)(x, out); err != nil {
					return err
				}
				var other bridge.Outbox
				if err := succeed(9)(testSession(9, bridge.ModeTest), &other); err != nil {
					return err
				}
				out.Add(other.Messages()[0]) // session 9's event id: taken
				return nil
			})
			return err
		},
		check: func(t *testing.T, o outcome, ran int32) {
			assert.ErrorIs(t, o.err, bridge.ErrConflict)
			assert.Equal(t, int32(1), ran)
		},
	}, {
		name: "create whose second attempt guid is taken, after its first was indexed",
		call: func(ctx context.Context, s *boltstore.Store, ran *atomic.Int32) error {
			ran.Add(1)
			sess := testSession(5, bridge.ModeTest)
			sess.ID = "vp_cs_test_failing"
			sess.Attempts = append(sess.Attempts, bridge.Attempt{Number: 2, SessionGUID: testGUID(0, 1), StartedAt: sess.CreatedAt})
			sess.Attempts[0].SessionGUID = testGUID(5, 2)
			return s.CreateSession(ctx, sess)
		},
		check: func(t *testing.T, o outcome, _ int32) {
			assert.ErrorIs(t, o.err, bridge.ErrConflict)
		},
	}, {
		name: "panic after changing its copy",
		call: func(ctx context.Context, s *boltstore.Store, ran *atomic.Int32) error {
			_, err := s.UpdateSession(ctx, testSession(5, bridge.ModeTest).ID, func(x *bridge.Session, out *bridge.Outbox) error {
				ran.Add(1)
				if err := restart(5, 2)(x, out); err != nil {
					return err
				}
				panic(errBoom)
			})
			return err
		},
		check: func(t *testing.T, o outcome, ran int32) {
			// The panic goes on in the caller's goroutine, as db.Update's would, whichever
			// goroutine ran fn.
			assert.False(t, o.returned, "the call returned instead of panicking")
			p, ok := o.panicked.(*boltstore.PanicError)
			require.True(t, ok, "panicked with %T %v", o.panicked, o.panicked)
			assert.Equal(t, errBoom, p.Value)
			assert.ErrorIs(t, p, errBoom)
			assert.Contains(t, string(p.Stack), "group_test.go", "the stack where fn panicked")
			assert.Equal(t, int32(1), ran)
		},
	}, {
		name:   "context cancelled while queued",
		cancel: true,
		call: func(ctx context.Context, s *boltstore.Store, ran *atomic.Int32) error {
			_, err := s.UpdateSession(ctx, testSession(5, bridge.ModeTest).ID, func(x *bridge.Session, out *bridge.Outbox) error {
				ran.Add(1)
				return restart(5, 2)(x, out)
			})
			return err
		},
		check: func(t *testing.T, o outcome, ran int32) {
			assert.ErrorIs(t, o.err, context.Canceled)
			assert.Zero(t, ran, "fn ran for a cancelled write")
		},
	}}

	for _, f := range failures {
		for _, pos := range []int{0, 2, 4} {
			t.Run(fmt.Sprintf("%s/at %d", f.name, pos), func(t *testing.T) {
				s := openTemp(t)
				ctx := t.Context()
				for n := range 10 {
					require.NoError(t, s.CreateSession(ctx, testSession(n, bridge.ModeTest)))
				}
				_, err := s.UpdateSession(ctx, testSession(9, bridge.ModeTest).ID, succeed(9))
				require.NoError(t, err)
				before5, err := s.Session(ctx, testSession(5, bridge.ModeTest).ID)
				require.NoError(t, err)

				// Good writes of every kind; the update of session 1 counts its runs, since a
				// rerun must still write exactly one version and one webhook.
				var runs1 atomic.Int32
				key := &bridge.IdempotencyRecord{Key: "acme/test/k", RequestHash: "h", CreatedAt: testEpoch, ExpiresAt: testEpoch.Add(time.Hour)}
				good := []func() error{
					func() error { return s.CreateSession(ctx, testSession(10, bridge.ModeTest)) },
					func() error {
						_, err := s.UpdateSession(ctx, testSession(1, bridge.ModeTest).ID, func(x *bridge.Session, out *bridge.Outbox) error {
							runs1.Add(1)
							return succeed(1)(x, out)
						})
						return err
					},
					func() error {
						_, err := s.UpdateSession(ctx, testSession(2, bridge.ModeTest).ID, restart(2, 2))
						return err
					},
					func() error {
						existing, err := s.ReserveIdempotency(ctx, key)
						if err == nil && existing != nil {
							err = errors.New("reserved a fresh key, got an existing record")
						}
						return err
					},
				}
				failCtx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var ran atomic.Int32
				calls := append([]func() error{}, good[:pos]...)
				calls = append(calls, func() error { return f.call(failCtx, s, &ran) })
				calls = append(calls, good[pos:]...)

				release := holdWriter(t, s)
				c0, w0 := boltstore.Commits(s)
				outs := queue(t, s, calls...)
				if f.cancel {
					cancel()
				}
				release()
				for i, out := range outs {
					o := wait(t, out)
					if i == pos {
						f.check(t, o, ran.Load())
						continue
					}
					assert.True(t, o.returned, "good write %d: panicked with %v", i, o.panicked)
					assert.NoError(t, o.err, "good write %d", i)
				}
				commits, writes := commitsSince(s, c0, w0)
				assert.Equal(t, uint64(2), commits, "the held write, then one for the good ones")
				assert.Equal(t, uint64(1+len(good)), writes)
				assert.LessOrEqual(t, runs1.Load(), int32(2), "session 1's fn runs at most once more")

				// Every good write landed, once.
				_, err = s.Session(ctx, testSession(10, bridge.ModeTest).ID)
				assert.NoError(t, err, "the created session")
				one, err := s.Session(ctx, testSession(1, bridge.ModeTest).ID)
				require.NoError(t, err)
				assert.Equal(t, bridge.StatusSucceeded, one.Status)
				assert.Equal(t, int64(1), one.Version, "one version bump, however many runs")
				two, err := s.Session(ctx, testSession(2, bridge.ModeTest).ID)
				require.NoError(t, err)
				assert.Len(t, two.Attempts, 2)
				rec, err := s.IdempotencyRecord(ctx, key.Key, testEpoch)
				require.NoError(t, err)
				assert.Equal(t, "h", rec.RequestHash)
				due, err := s.DueOutbox(ctx, testEpoch.Add(1000*time.Hour), 100)
				require.NoError(t, err)
				var dueIDs []string
				for _, m := range due {
					dueIDs = append(dueIDs, m.ID)
				}
				var one1, nine bridge.Outbox
				require.NoError(t, succeed(1)(testSession(1, bridge.ModeTest), &one1))
				require.NoError(t, succeed(9)(testSession(9, bridge.ModeTest), &nine))
				assert.ElementsMatch(t, []string{one1.Messages()[0].ID, nine.Messages()[0].ID}, dueIDs, "exactly the good webhooks")

				// Nothing of the failed write did.
				after5, err := s.Session(ctx, testSession(5, bridge.ModeTest).ID)
				require.NoError(t, err)
				assertJSONSame(t, before5, after5)
				for _, guid := range []string{testGUID(5, 2)} {
					_, err := s.SessionByGUID(ctx, guid)
					assert.ErrorIs(t, err, bridge.ErrNotFound, "guid %s indexed by the failed write", guid)
				}
				_, err = s.Session(ctx, "vp_cs_test_failing")
				assert.ErrorIs(t, err, bridge.ErrNotFound)
				open, err := s.OpenSessions(ctx)
				require.NoError(t, err)
				assert.Len(t, open, 10, "0, 2..8, 10 and the held 900")

				// The guid index holds no trace either (SessionByGUID above would miss an entry
				// pointing at a session that does not exist): the guid is free to take.
				eleven := testSession(11, bridge.ModeTest)
				eleven.Attempts[0].SessionGUID = testGUID(5, 2)
				require.NoError(t, s.CreateSession(ctx, eleven), "the queue works, and guid 5-2 is free")
			})
		}
	}
}

// TestGroupCommitErrorAloneWritesNothing is the lone writer's case: its own transaction, rolled
// back.
func TestGroupCommitErrorAloneWritesNothing(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	sess := testSession(1, bridge.ModeTest)
	require.NoError(t, s.CreateSession(ctx, sess))
	before, err := s.Session(ctx, sess.ID)
	require.NoError(t, err)
	c0, w0 := boltstore.Commits(s)

	errBoom := errors.New("boom")
	_, err = s.UpdateSession(ctx, sess.ID, func(x *bridge.Session, out *bridge.Outbox) error {
		if err := succeed(1)(x, out); err != nil {
			return err
		}
		return errBoom
	})
	require.ErrorIs(t, err, errBoom)

	after, err := s.Session(ctx, sess.ID)
	require.NoError(t, err)
	assertJSONSame(t, before, after)
	due, err := s.DueOutbox(ctx, testEpoch.Add(1000*time.Hour), 10)
	require.NoError(t, err)
	assert.Empty(t, due)
	commits, writes := commitsSince(s, c0, w0)
	assert.Zero(t, commits)
	assert.Zero(t, writes)
}

// TestGroupCommitPanicDoesNotWedge: a lone writer's panic reaches its caller and the next write,
// from another goroutine, goes through.
func TestGroupCommitPanicDoesNotWedge(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	require.NoError(t, s.CreateSession(ctx, testSession(1, bridge.ModeTest)))
	for range 3 {
		func() {
			defer func() {
				p, ok := recover().(*boltstore.PanicError)
				require.True(t, ok, "the caller sees a *PanicError")
				assert.Equal(t, "boom", p.Value)
			}()
			_, _ = s.UpdateSession(ctx, testSession(1, bridge.ModeTest).ID, func(*bridge.Session, *bridge.Outbox) error { panic("boom") })
			t.Error("UpdateSession did not panic")
		}()
	}
	var wg sync.WaitGroup
	for n := 2; n < 10; n++ {
		wg.Go(func() { assert.NoError(t, s.CreateSession(ctx, testSession(n, bridge.ModeTest))) })
	}
	wg.Wait()
}

// TestGroupCommitGoexit: a function calling runtime.Goexit (t.FailNow in a test) ends the
// goroutine leading the round, whichever write it belongs to; the round is rolled back, that
// write fails with an error if it is not the leader's own, and the others commit in the next
// round. The leader's own write is lost with its goroutine: a documented limit.
func TestGroupCommitGoexit(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	require.NoError(t, s.CreateSession(ctx, testSession(1, bridge.ModeTest)))

	t.Run("lone", func(t *testing.T) {
		out := make(chan outcome, 1)
		go func() {
			var o outcome
			defer func() { o.panicked = recover(); out <- o }()
			_, o.err = s.UpdateSession(ctx, testSession(1, bridge.ModeTest).ID, func(*bridge.Session, *bridge.Outbox) error {
				runtime.Goexit()
				return nil
			})
			o.returned = true
		}()
		o := wait(t, out)
		assert.False(t, o.returned)
		assert.Nil(t, o.panicked)
		require.NoError(t, s.CreateSession(ctx, testSession(2, bridge.ModeTest)), "the queue is not wedged")
	})

	t.Run("another member's", func(t *testing.T) {
		release := holdWriter(t, s)
		outs := queue(t, s,
			func() error { return s.CreateSession(ctx, testSession(3, bridge.ModeTest)) }, // leads
			func() error {
				_, err := s.UpdateSession(ctx, testSession(1, bridge.ModeTest).ID, func(*bridge.Session, *bridge.Outbox) error {
					runtime.Goexit()
					return nil
				})
				return err
			},
			func() error { return s.CreateSession(ctx, testSession(4, bridge.ModeTest)) },
		)
		release()
		leader, culprit, last := wait(t, outs[0]), wait(t, outs[1]), wait(t, outs[2])
		assert.False(t, leader.returned, "the leader's goroutine ran the Goexit")
		assert.True(t, culprit.returned)
		assert.Error(t, culprit.err)
		assert.NoError(t, last.err)
		_, err := s.Session(ctx, testSession(3, bridge.ModeTest).ID)
		assert.ErrorIs(t, err, bridge.ErrNotFound, "the leader's write was rolled back")
		_, err = s.Session(ctx, testSession(4, bridge.ModeTest).ID)
		assert.NoError(t, err)
		one, err := s.Session(ctx, testSession(1, bridge.ModeTest).ID)
		require.NoError(t, err)
		assert.Zero(t, one.Version)
	})
}

// TestGroupCommitConcurrentWritersAllLand runs 64 writers at once, each creating sessions and
// moving them on, some failing on purpose, and checks every acknowledged write is there and no
// failed one is.
func TestGroupCommitConcurrentWritersAllLand(t *testing.T) {
	const writers, perWriter = 64, 6
	s := openTemp(t)
	ctx := t.Context()
	errBoom := errors.New("boom")
	c0, w0 := boltstore.Commits(s)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range perWriter {
				n := g*perWriter + i
				id := testSession(n, bridge.ModeTest).ID
				if !assert.NoError(t, s.CreateSession(ctx, testSession(n, bridge.ModeTest))) {
					return
				}
				_, err := s.UpdateSession(ctx, id, restart(n, 2))
				assert.NoError(t, err)
				_, err = s.UpdateSession(ctx, id, func(x *bridge.Session, out *bridge.Outbox) error {
					if err := succeed(n)(x, out); err != nil {
						return err
					}
					if n%3 == 0 {
						return errBoom // every third session fails its last step
					}
					return nil
				})
				if n%3 == 0 {
					assert.ErrorIs(t, err, errBoom)
				} else {
					assert.NoError(t, err)
				}
			}
		})
	}
	wg.Wait()

	var wantOpen, wantDue []string
	for n := range writers * perWriter {
		sess, err := s.Session(ctx, testSession(n, bridge.ModeTest).ID)
		require.NoError(t, err)
		var out bridge.Outbox
		require.NoError(t, succeed(n)(testSession(n, bridge.ModeTest), &out))
		if n%3 == 0 {
			assert.Equal(t, int64(1), sess.Version, "session %d", n)
			assert.Equal(t, bridge.StatusActive, sess.Status)
			wantOpen = append(wantOpen, sess.ID)
		} else {
			assert.Equal(t, int64(2), sess.Version, "session %d", n)
			assert.Equal(t, bridge.StatusSucceeded, sess.Status)
			wantDue = append(wantDue, out.Messages()[0].ID)
		}
		assert.Len(t, sess.Attempts, 2)
		byGUID, err := s.SessionByGUID(ctx, testGUID(n, 2))
		if assert.NoError(t, err) {
			assert.Equal(t, sess.ID, byGUID.ID)
		}
	}
	open, err := s.OpenSessions(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, wantOpen, sessionIDs(open))
	due, err := s.DueOutbox(ctx, testEpoch.Add(1000*time.Hour), 1000)
	require.NoError(t, err)
	var dueIDs []string
	for _, m := range due {
		dueIDs = append(dueIDs, m.ID)
	}
	assert.ElementsMatch(t, wantDue, dueIDs)

	commits, writes := commitsSince(s, c0, w0)
	// Three writes per session, less the third of the last steps that failed.
	assert.Equal(t, uint64(writers*perWriter*3-writers*perWriter/3), writes)
	t.Logf("%d writes in %d transactions", writes, commits)
}

func init() { storeCommits = boltstore.Commits }
