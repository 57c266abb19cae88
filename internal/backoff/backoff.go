// Package backoff is paybridge's one rule for how long to wait before retrying: exponential
// from a first wait, capped, with "equal jitter". The VCC client's token requests, the webhook
// dispatcher, `paybridge listen` and the Go client all wait by it (VCC's Payment API calls are
// retried by resty, whose own backoff is the same rule).
package backoff

import "time"

// Wait returns the wait before retry n (1-based): first, doubled for each earlier retry and
// capped at ceiling, of which half is fixed and the other half scaled by random, a number in
// [0, 1). So the wait lies in [d/2, d) for that step's d: callers refused together do not come
// back together, and none comes back sooner than half its step.
func Wait(n int, first, ceiling time.Duration, random float64) time.Duration {
	d := max(first, 0)
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, max(ceiling, first))
	half := d / 2
	return half + time.Duration(min(max(random, 0), 1)*float64(d-half))
}
