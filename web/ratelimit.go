package web

import (
	"context"
	"hash/maphash"
	"math"
	"net/http"
	"strconv"
	"sync"
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
	limit  RateLimit
	clock  bridge.Clock
	seed   maphash.Seed
	shards [32]limiterShard
}

type limiterShard struct {
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	takes   int
}

// quota is what one take found: whether it was allowed and what the headers report.
type quota struct {
	allowed    bool
	limit      int
	remaining  int
	reset      time.Time     // when the bucket is full again
	retryAfter time.Duration // when denied: until one request is allowed
}

func newLimiter(l RateLimit, clock bridge.Clock) *limiter {
	lim := &limiter{limit: l, clock: clock, seed: maphash.MakeSeed()}
	for i := range lim.shards {
		lim.shards[i].buckets = make(map[string]*rate.Limiter)
	}
	return lim
}

// take spends one request of key's bucket, if there is one.
func (l *limiter) take(key string) quota {
	now := l.clock.Now()
	every := l.limit.Window / time.Duration(l.limit.Limit)
	sh := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	sh.mu.Lock()
	b := sh.buckets[key]
	if b == nil {
		b = rate.NewLimiter(rate.Every(every), l.limit.Limit)
		sh.buckets[key] = b
	}
	allowed := b.AllowN(now, 1)
	tokens := b.TokensAt(now)
	if sh.takes++; sh.takes%1024 == 0 {
		// Full buckets carry no state worth keeping: forget them so idle keys cost nothing.
		for k, other := range sh.buckets {
			if k != key && other.TokensAt(now) >= float64(l.limit.Limit) {
				delete(sh.buckets, k)
			}
		}
	}
	sh.mu.Unlock()

	q := quota{allowed: allowed, limit: l.limit.Limit, remaining: max(int(math.Floor(tokens)), 0)}
	q.reset = now.Add(time.Duration((float64(l.limit.Limit) - tokens) * float64(every)))
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
				"Agent %s created more than %d sessions in %s with this API key.", c.agent.AgentID, q.limit, s.perKey.limit.Window)
		}
		return bridge.Errorf(bridge.CodeRateLimitExceededPerKey,
			"This API key created more than %d sessions in %s.", q.limit, s.perKey.limit.Window)
	}
	return nil
}

// takePerKey spends one request of the per-key bucket, in the shared store when there is one.
func (s *Server) takePerKey(ctx context.Context, bucket string) (quota, error) {
	shared, ok := s.store.(bridge.SharedRateLimiter)
	if !ok {
		return s.perKey.take(bucket), nil
	}
	l := s.perKey.limit
	allowed, tokens, err := shared.TakeRate(ctx, bucket, l.Limit, l.Window)
	if err != nil {
		return quota{}, err
	}
	every := l.Window / time.Duration(l.Limit)
	now := s.clock.Now()
	q := quota{allowed: allowed, limit: l.Limit, remaining: max(int(math.Floor(tokens)), 0)}
	q.reset = now.Add(time.Duration((float64(l.Limit) - tokens) * float64(every)))
	if !allowed {
		q.retryAfter = time.Duration((1 - tokens) * float64(every))
	}
	return q, nil
}
