package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/paybridge/paybridge/bridge"
)

const (
	// maxIdempotencyKey is the longest Idempotency-Key accepted.
	maxIdempotencyKey = 255
	// idempotencyStale is how long a first request may stay in flight before a duplicate decides
	// its process died and runs the request itself.
	idempotencyStale = 2 * time.Minute
	// idempotencyPoll is how often a duplicate rereads a record another process holds.
	idempotencyPoll = 50 * time.Millisecond
)

// idempotent gives a POST handler Stripe-style idempotency: with an Idempotency-Key, the first
// response is stored (24 h by default, durably) and replayed for the same key and body with
// Idempotent-Replayed: true; the same key with another body is a validation_error; a duplicate
// arriving while the first is in flight waits for it. Server errors and 429s are not stored, so
// a retry runs again.
func (s *Server) idempotent(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			return h(w, r)
		}
		if len(key) > maxIdempotencyKey || !printableASCII(key) {
			return bridge.Errorf(bridge.CodeValidationError, "Idempotency-Key must be 1 to %d printable ASCII characters.", maxIdempotencyKey).
				WithParam("Idempotency-Key").WithFix("Use a UUID (or any unique string of up to 255 printable characters) per logical operation.")
		}
		p, err := s.authenticate(r)
		if err != nil {
			return err
		}
		body, err := readBody(w, r)
		if err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		scope := p.Merchant.ID + "\x00" + string(p.Key.Mode) + "\x00" + key
		sum := sha256.Sum256([]byte(r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery + "\n" + string(body)))
		hash := hex.EncodeToString(sum[:])

		done, err := s.reserveIdempotency(r.Context(), scope, hash)
		if err != nil {
			return err
		}
		if done != nil {
			w.Header().Set("Idempotent-Replayed", "true")
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(done.Status)
			_, _ = w.Write(done.Body)
			return nil
		}
		finished := make(chan struct{})
		s.inflight.Store(scope, finished)
		defer func() {
			s.inflight.Delete(scope)
			close(finished)
		}()

		rec := &responseRecorder{header: w.Header(), status: http.StatusOK}
		if err := h(rec, r); err != nil {
			s.writeError(rec, r, err)
		}
		// Record with a context that outlives a client that hung up: the work is done.
		ctx := context.WithoutCancel(r.Context())
		if rec.status >= 500 || rec.status == http.StatusTooManyRequests {
			if err := s.store.ReleaseIdempotency(ctx, scope); err != nil {
				s.logger.ErrorContext(ctx, "release idempotency key", "err", err)
			}
		} else if err := s.store.CompleteIdempotency(ctx, scope, rec.status, rec.body.Bytes()); err != nil {
			s.logger.ErrorContext(ctx, "record idempotent response", "err", err)
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
		return nil
	}
}

// reserveIdempotency claims scope for this request (returning nil) or returns the finished
// record to replay, waiting while another request holds it.
func (s *Server) reserveIdempotency(ctx context.Context, scope, hash string) (*bridge.IdempotencyRecord, error) {
	for {
		now := s.clock.Now()
		existing, err := s.store.ReserveIdempotency(ctx, &bridge.IdempotencyRecord{
			Key: scope, RequestHash: hash, CreatedAt: now, ExpiresAt: now.Add(s.idempotencyTTL)})
		if err != nil {
			return nil, err
		}
		switch {
		case existing == nil:
			return nil, nil
		case existing.RequestHash != hash:
			return nil, bridge.Errorf(bridge.CodeValidationError, "This Idempotency-Key was already used with a different request.").
				WithParam("Idempotency-Key").WithFix("Use a new Idempotency-Key for a new request; reuse a key only to retry the very same request.")
		case existing.Done:
			return existing, nil
		}
		// In flight: wait for it here, or poll if another process holds it.
		if ch, ok := s.inflight.Load(scope); ok {
			select {
			case <-ch.(chan struct{}):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			continue
		}
		if now.Sub(existing.CreatedAt) > idempotencyStale {
			// Its owner died mid-request (the reservation is durable, the process was not).
			if err := s.store.ReleaseIdempotency(ctx, scope); err != nil && !errors.Is(err, bridge.ErrNotFound) {
				return nil, err
			}
			continue
		}
		select {
		case <-time.After(idempotencyPoll):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// responseRecorder keeps a handler's status and body so they can be stored before being sent.
// Headers go straight to the real response.
type responseRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (r *responseRecorder) Header() http.Header { return r.header }

func (r *responseRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}

func (r *responseRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
