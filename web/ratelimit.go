package web

import (
	"context"
	"hash/maphash"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/paybridge/paybridge/bridge"
)

// RateLimit is a token bucket: Limit requests per Window, refilling evenly, bursting up to Limit.
type RateLimit struct {
	Limit  int
	Window time.Duration
}

// limiter keeps one bucket per key (an API key id, maybe with an agent id; a client IP), sharded so that one busy key
// never waits on another's lock.
type limiter struct {
	limit  atomic.Pointer[limitSetting] // replaced by set (a configuration reload)
	clock  bridge.Clock
	seed   maphash.Seed
	shards [32]limiterShard
}

type limiterShard struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	takes   int
}

// limitSetting is a limit and when it took effect.
type limitSetting struct {
	RateLimit
	since time.Time
}

// bucket is one key's token bucket and the limit it was last set to.
type bucket struct {
	*rate.Limiter
	of RateLimit
}

// quota is what one take found: whether it was allowed and what the headers report.
type quota struct {
	allowed    bool
	limit      int
	window     time.Duration // of limit
	remaining  int
	reset      time.Time     // when the bucket is full again
	retryAfter time.Duration // when denied: until one request is allowed
}

func newLimiter(l RateLimit, clock bridge.Clock) *limiter {
	lim := &limiter{clock: clock, seed: maphash.MakeSeed()}
	lim.limit.Store(&limitSetting{RateLimit: l})
	for i := range lim.shards {
		lim.shards[i].buckets = make(map[string]*bucket)
	}
	return lim
}

// current is the limit in force.
func (l *limiter) current() RateLimit { return l.limit.Load().RateLimit }

// set replaces the limit. A bucket takes the new rate and burst on its next take, as of now:
// it keeps the tokens it had then (up to the new burst) and refills at the new rate since.
func (l *limiter) set(limit RateLimit) {
	l.limit.Store(&limitSetting{RateLimit: limit, since: l.clock.Now()})
}

// take spends one request of key's bucket, if there is one.
func (l *limiter) take(key string) quota {
	now := l.clock.Now()
	setting := l.limit.Load()
	limit := setting.RateLimit
	every := limit.Window / time.Duration(limit.Limit)
	sh := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	sh.mu.Lock()
	b := sh.buckets[key]
	switch {
	case b == nil:
		b = &bucket{Limiter: rate.NewLimiter(rate.Every(every), limit.Limit), of: limit}
		sh.buckets[key] = b
	case b.of != limit:
		b.SetLimitAt(setting.since, rate.Every(every))
		b.SetBurstAt(setting.since, limit.Limit)
		b.of = limit
	}
	allowed := b.AllowN(now, 1)
	tokens := min(b.TokensAt(now), float64(limit.Limit))
	if sh.takes++; sh.takes%1024 == 0 {
		// Full buckets carry no state worth keeping: forget them so idle keys cost nothing.
		for k, other := range sh.buckets {
			if k != key && other.TokensAt(now) >= float64(other.of.Limit) {
				delete(sh.buckets, k)
			}
		}
	}
	sh.mu.Unlock()

	q := quota{allowed: allowed, limit: limit.Limit, window: limit.Window, remaining: max(int(math.Floor(tokens)), 0)}
	q.reset = now.Add(time.Duration((float64(limit.Limit) - tokens) * float64(every)))
	if !allowed {
		q.retryAfter = time.Duration((1 - tokens) * float64(every))
	}
	return q
}

// setHeaders reports q on the response (DESIGN section 4).
func (q quota) setHeaders(h http.Header) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(q.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(q.remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(q.reset.Unix(), 10))
	if !q.allowed {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(max(q.retryAfter, time.Second).Seconds()))))
	}
}

// limitPerKey meters session creates per credential; its headers replace the per-IP ones.
//
// The bucket is the API key's for a secret-key caller (the integrator's backend) and the API key
// plus the agent for a browser caller (publishable key + agent token): a contact centre's agents
// all share one publishable key, so one bucket per key would let one agent's retries, or 30
// agents each taking one payment, lock every other agent out. The agent id comes from the signed
// token, so a browser cannot pick its own bucket; minting tokens needs the secret key.
//
// On a store several nodes share (a bridge.SharedRateLimiter) the bucket lives in the store, so
// the limit holds whichever nodes serve the key; the per-IP limit stays per node.
func (s *Server) limitPerKey(ctx context.Context, w http.ResponseWriter, c *caller) error {
	bucket := c.Key.ID
	if c.agent != nil {
		bucket += "\x00" + c.agent.AgentID
	}
	q, err := s.takePerKey(ctx, bucket)
	if err != nil {
		return err
	}
	q.setHeaders(w.Header())
	if !q.allowed {
		if c.agent != nil {
			return bridge.Errorf(bridge.CodeRateLimitExceededPerKey,
				"Agent %s created more than %d sessions in %s with this API key.", c.agent.AgentID, q.limit, q.window)
		}
		return bridge.Errorf(bridge.CodeRateLimitExceededPerKey,
			"This API key created more than %d sessions in %s.", q.limit, q.window)
	}
	return nil
}

// takePerKey spends one request of the per-key bucket, in the shared store when there is one.
func (s *Server) takePerKey(ctx context.Context, bucket string) (quota, error) {
	shared, ok := s.store.(bridge.SharedRateLimiter)
	if !ok {
		return s.perKey.take(bucket), nil
	}
	l := s.perKey.current()
	allowed, tokens, err := shared.TakeRate(ctx, bucket, l.Limit, l.Window)
	if err != nil {
		return quota{}, err
	}
	every := l.Window / time.Duration(l.Limit)
	now := s.clock.Now()
	q := quota{allowed: allowed, limit: l.Limit, window: l.Window, remaining: max(int(math.Floor(tokens)), 0)}
	q.reset = now.Add(time.Duration((float64(l.Limit) - tokens) * float64(every)))
	if !allowed {
		q.retryAfter = time.Duration((1 - tokens) * float64(every))
	}
	return q, nil
}

// SetRateLimits replaces the per-key and per-IP limits (a configuration reload); a zero limit
// keeps the one in force. Buckets keep their tokens, capped at the new burst.
func (s *Server) SetRateLimits(perKey, perIP RateLimit) {
	if perKey.Limit > 0 && perKey.Window > 0 {
		s.perKey.set(perKey)
	}
	if perIP.Limit > 0 && perIP.Window > 0 {
		s.perIP.set(perIP)
	}
}
