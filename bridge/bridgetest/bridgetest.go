// Package bridgetest holds helpers that paybridge's tests share: a clock moved by hand and a
// log sink that proves no secret reached a log line. It is for tests only.
package bridgetest

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// ManualClock is a bridge.Clock that moves only when told to.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a clock standing at start.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{now: start} }

// Now implements bridge.Clock.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
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
