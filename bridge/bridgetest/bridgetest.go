// Package bridgetest holds helpers that paybridge's tests share: a clock moved by hand and a
// log sink that proves no secret reached a log line. It is for tests only.
package bridgetest

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ManualClock is a bridge.Clock that moves only when told to. Its AfterFunc timers fire when
// Advance or Set reaches their time, in time order, before Advance or Set returns: a test that
// moves the clock past a deadline sees what the deadline does as soon as the call returns.
type ManualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*manualTimer]struct{}
}

// manualTimer is one AfterFunc of a ManualClock.
type manualTimer struct {
	at time.Time
	f  func()
}

// NewManualClock returns a clock standing at start.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{now: start} }

// Now implements bridge.Clock.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and fires the timers it reaches.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	c.fire()
}

// Set moves the clock to t and fires the timers it reaches.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
	c.fire()
}

// AfterFunc calls f once the clock reaches d from now (at once, in its own goroutine, if d <= 0,
// as time.AfterFunc does). stop cancels it and reports whether it had not fired yet.
func (c *ManualClock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	if d <= 0 {
		go f()
		return func() bool { return false }
	}
	t := &manualTimer{f: f}
	c.mu.Lock()
	t.at = c.now.Add(d)
	if c.timers == nil {
		c.timers = make(map[*manualTimer]struct{})
	}
	c.timers[t] = struct{}{}
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, pending := c.timers[t]
		delete(c.timers, t)
		return pending
	}
}

// fire runs the due timers in time order, outside the lock (they may read the clock).
func (c *ManualClock) fire() {
	c.mu.Lock()
	var due []*manualTimer
	for t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t)
			delete(c.timers, t)
		}
	}
	c.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *manualTimer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		t.f()
	}
}

// LogSink collects log output from any number of goroutines.
type LogSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (s *LogSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// String returns everything logged so far.
func (s *LogSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Logger returns a debug-level JSON logger writing to s, so that every line any level could
// emit is captured.
func (s *LogSink) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// AssertNoSecrets fails t if any of secrets (empty ones skipped) appears in the captured logs,
// and fails if nothing was logged at all, since then the check proves nothing.
func (s *LogSink) AssertNoSecrets(t testing.TB, secrets ...string) {
	t.Helper()
	logs := s.String()
	if strings.TrimSpace(logs) == "" {
		t.Fatal("no log output was captured; the secret check would prove nothing")
	}
	for _, secret := range secrets {
		if secret != "" && strings.Contains(logs, secret) {
			t.Errorf("a secret (%d chars, starting %q) appears in the logs", len(secret), secret[:min(6, len(secret))])
		}
	}
}
