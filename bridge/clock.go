package bridge

import "time"

// Clock tells the time. Everything in paybridge that depends on time takes one, so tests move
// time by hand instead of sleeping.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }
