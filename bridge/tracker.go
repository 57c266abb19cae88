package bridge

import (
	"slices"
	"sync"
	"time"
)

// tracker is the in-memory index of open sessions that drives background work (expiry, polling)
// and agent snapshots without scanning the store. It is rebuilt from Store.OpenSessions at start.
type tracker struct {
	loadMu sync.Mutex
	loaded bool

	reloadMu sync.Mutex
	reloaded time.Time // when the open sessions of a shared store were last read again

	mu      sync.Mutex
	items   map[string]*tracked
	byAgent map[AgentRef]map[string]struct{}
}

type tracked struct {
	id        string
	agent     AgentRef
	createdAt time.Time
	expiresAt time.Time // when to settle it: its TTL, or later while an expiry is postponed
	nextPoll  time.Time // for a pending session: when to give up on it
	olderAt   time.Time // when replaced attempts were last asked about
	elsewhere time.Time // another node does its work: not due before this
	pending   bool
	closed    bool // terminal, watched for a late payment until expiresAt
	busy      bool // a sweep is working on it
}

func (t *tracker) put(item *tracked) {
	if old := t.items[item.id]; old != nil {
		item.busy, item.olderAt = old.busy, old.olderAt
		if old.expiresAt.After(item.expiresAt) && !item.closed {
			item.expiresAt = old.expiresAt // a postponed expiry stays postponed
		}
	}
	t.items[item.id] = item
	if t.byAgent == nil {
		t.byAgent = make(map[AgentRef]map[string]struct{})
	}
	ids := t.byAgent[item.agent]
	if ids == nil {
		ids = make(map[string]struct{})
		t.byAgent[item.agent] = ids
	}
	ids[item.id] = struct{}{}
}

func newTracked(sess *Session, next time.Time) *tracked {
	t := &tracked{
		id:        sess.ID,
		agent:     AgentRef{MerchantID: sess.MerchantID, Mode: sess.Mode, AgentID: sess.AgentID},
		createdAt: sess.CreatedAt, expiresAt: sess.ExpiresAt, nextPoll: next,
		pending: sess.Status == StatusPending, closed: sess.Status.Terminal(),
	}
	if t.closed {
		t.expiresAt = sess.WatchUntil
	}
	return t
}

// track records an active session whose next poll is due at next.
func (t *tracker) track(sess *Session, next time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.put(newTracked(sess, next))
}

// trackIfAbsent records a session read from the store at start: active ones poll at once,
// pending ones are given up on at pendingDue.
func (t *tracker) trackIfAbsent(sess *Session, now, pendingDue time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.items[sess.ID]; ok {
		return
	}
	next := now
	if sess.Status == StatusPending {
		next = pendingDue
	}
	t.put(newTracked(sess, next))
}

// size returns how many open sessions are tracked (not those only watched for a late payment).
func (t *tracker) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, it := range t.items {
		if !it.closed {
			n++
		}
	}
	return n
}

func (t *tracker) untrack(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	item := t.items[id]
	if item == nil {
		return
	}
	delete(t.items, id)
	if ids := t.byAgent[item.agent]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(t.byAgent, item.agent)
		}
	}
}

// ofAgent returns the agent's open session ids, oldest first.
func (t *tracker) ofAgent(agent AgentRef) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	items := make([]*tracked, 0, len(t.byAgent[agent]))
	for id := range t.byAgent[agent] {
		if it := t.items[id]; !it.closed {
			items = append(items, it)
		}
	}
	slices.SortFunc(items, func(a, b *tracked) int {
		if c := a.createdAt.Compare(b.createdAt); c != 0 {
			return c
		}
		return compareStrings(a.id, b.id)
	})
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.id
	}
	return ids
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// due returns copies of the sessions needing work at now and marks them busy.
func (t *tracker) due(now time.Time) []tracked {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []tracked
	for _, it := range t.items {
		if it.busy || now.Before(it.elsewhere) || (now.Before(it.expiresAt) && now.Before(it.nextPoll)) {
			continue
		}
		it.busy = true
		out = append(out, *it)
	}
	return out
}

// done ends a sweep's work on id; if the session is still open its next poll is at next.
func (t *tracker) done(id string, next time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if it := t.items[id]; it != nil {
		it.busy = false
		if !it.pending {
			it.nextPoll = next
		}
	}
}

// release ends a sweep's claim on id without doing its work: it is due again next round.
func (t *tracker) release(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if it := t.items[id]; it != nil {
		it.busy = false
	}
}

// postpone moves id's next expiry check to until.
func (t *tracker) postpone(id string, until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if it := t.items[id]; it != nil {
		it.expiresAt = until
	}
}

// olderDue reports whether id's replaced attempts are due to be asked about at now, and if so
// records that they are being asked.
func (t *tracker) olderDue(id string, now time.Time, every time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	it := t.items[id]
	if it == nil || now.Sub(it.olderAt) < every {
		return false
	}
	it.olderAt = now
	return true
}

// elsewhere ends a sweep's claim on id because another node does its work: it is not due again
// before until.
func (t *tracker) elsewhere(id string, until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if it := t.items[id]; it != nil {
		it.busy, it.elsewhere = false, until
	}
}

// reloadDue reports whether the open sessions are due to be read again at now, and if so records
// that they are being read.
func (t *tracker) reloadDue(now time.Time, every time.Duration) bool {
	t.reloadMu.Lock()
	defer t.reloadMu.Unlock()
	if now.Sub(t.reloaded) < every {
		return false
	}
	t.reloaded = now
	return true
}
