package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/maphash"
	"io"
	"net/http"
	"time"

	"github.com/paybridge/paybridge/bridge"
)

const (
	// maxIdempotencyKey is the longest Idempotency-Key accepted.
	maxIdempotencyKey = 255
	// idempotencyStale is how long a first request another process started after this one may
	// stay in flight before a duplicate decides that process died and runs the request itself.
	idempotencyStale = 2 * time.Minute
	// idempotencyPoll is how often a duplicate rereads a record another process holds.
	idempotencyPoll = 50 * time.Millisecond
)

// idempotent gives a POST handler Stripe-style idempotency: with an Idempotency-Key, the first
// response is stored (24 h by default, durably, sealed) and replayed for the same key and body
// with Idempotent-Replayed: true; the same key with another body is a validation_error; a
// duplicate arriving while the first is in flight waits for it. Server errors and 429s are not
// stored, so a retry runs again.
//
// It runs behind the endpoint's authenticated middleware, so the endpoint's own authorization has
// passed before anything is reserved or replayed: a stored response may hold a credential (a new
// API key, an agent token), and a replay must never give a caller what the endpoint would refuse
// it. Keys are scoped to the caller's API
// key and, for a browser caller, its agent, so neither another key of the merchant nor another
// agent behind the same publishable key can reach a response by guessing its Idempotency-Key.
func (s *Server) idempotent(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			return h(w, r)
		}
		c, err := callerOf(r)
		if err != nil {
			return err
		}
		if len(key) > maxIdempotencyKey || !printableASCII(key) {
			return bridge.Errorf(bridge.CodeValidationError, "Idempotency-Key must be 1 to %d printable ASCII characters.", maxIdempotencyKey).
				WithParam("Idempotency-Key").WithFix("Use a UUID (or any unique string of up to 255 printable characters) per logical operation.")
		}
		body, err := readBody(w, r)
		if err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		scope := idempotencyScope(c, key)
		sum := sha256.Sum256([]byte(r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery + "\n" + string(body)))
		hash := hex.EncodeToString(sum[:])

		done, held, resourceID, err := s.reserveIdempotency(r.Context(), c, scope, hash)
		if err != nil {
			return err
		}
		if done != nil {
			hdr := w.Header()
			hdr.Set("Idempotent-Replayed", "true")
			hdr.Set("Content-Type", "application/json; charset=utf-8")
			hdr.Set("Cache-Control", "no-store")
			w.WriteHeader(done.Status)
			_, _ = w.Write(replaceRequestID(done.Body, RequestID(r.Context())))
			return nil
		}
		// This request holds scope; its duplicates in this process wait on held.
		recorded := false
		defer func() {
			if !recorded {
				// The handler panicked: free the key for a retry rather than leave a reservation
				// that nobody will finish.
				if err := s.store.ReleaseIdempotency(context.WithoutCancel(r.Context()), scope); err != nil {
					s.logger.ErrorContext(r.Context(), "release idempotency key", "err", err)
				}
			}
			s.finishInflight(scope, held)
		}()

		rec := &responseRecorder{header: w.Header(), status: http.StatusOK}
		r = r.WithContext(context.WithValue(r.Context(), resourceIDKey{}, resourceID))
		if err := h(rec, r); err != nil {
			s.writeError(rec, r, err)
		}
		// Record with a context that outlives a client that hung up: the work is done.
		ctx := context.WithoutCancel(r.Context())
		if rec.status >= 500 || rec.status == http.StatusTooManyRequests {
			if err := s.store.ReleaseIdempotency(ctx, scope); err != nil {
				s.logger.ErrorContext(ctx, "release idempotency key", "err", err)
			}
		} else {
			// Sealed, because some responses carry a credential (a new API key, an agent token)
			// that must not sit readable in the data file; the scope as associated data keeps a
			// sealed body from being replayed under another scope.
			sealed := s.keyring.Seal(rec.body.Bytes(), []byte(scope))
			if err := s.store.CompleteIdempotency(ctx, scope, rec.status, sealed); err != nil {
				s.logger.ErrorContext(ctx, "record idempotent response", "err", err)
			}
		}
		recorded = true
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
		return nil
	}
}

// idempotencyScope is the store key of an Idempotency-Key: the merchant, mode, API key and (for a
// browser caller) agent it belongs to, then the client's key. NUL cannot occur in any part.
func idempotencyScope(c *caller, key string) string {
	agent := ""
	if c.agent != nil {
		agent = c.agent.AgentID
	}
	return c.Merchant.ID + "\x00" + string(c.Key.Mode) + "\x00" + c.Key.ID + "\x00" + agent + "\x00" + key
}

// reservation is what one attempt to reserve a scope found: exactly one of held, replay, wait
// and poll is set.
type reservation struct {
	held       chan struct{}             // the scope is now this request's; close when it finishes
	resourceID string                    // with held: the id what the request creates must take
	replay     *bridge.IdempotencyRecord // a finished response, its body opened
	wait       <-chan struct{}           // closed when this process's first request finishes
	poll       bool                      // another live process holds the scope
}

// resourceIDKey is the context key of an idempotent request's resource id.
type resourceIDKey struct{}

// resourceIDOf returns the id an idempotent request must give what it creates, or "".
func resourceIDOf(ctx context.Context) string {
	id, _ := ctx.Value(resourceIDKey{}).(string)
	return id
}

// reserveIdempotency claims scope for this request, returning the channel its duplicates wait
// on and the resource id its creation must use, or returns the finished record to replay, its
// body opened, waiting while another request holds it.
func (s *Server) reserveIdempotency(ctx context.Context, c *caller, scope, hash string) (*bridge.IdempotencyRecord, chan struct{}, string, error) {
	for {
		res, err := s.tryReserve(ctx, c, scope, hash)
		if err != nil {
			return nil, nil, "", err
		}
		var wake <-chan time.Time
		switch {
		case res.held != nil || res.replay != nil:
			return res.replay, res.held, res.resourceID, nil
		case res.poll:
			wake = time.After(idempotencyPoll)
		}
		select {
		case <-res.wait:
		case <-wake:
		case <-ctx.Done():
			return nil, nil, "", ctx.Err()
		}
	}
}

// tryReserve makes one attempt at scope. It runs under the scope's lock, so that within this
// process deciding a record is dead (or unreadable), releasing it and reserving anew is one step:
// two requests can never both release and both run.
func (s *Server) tryReserve(ctx context.Context, c *caller, scope, hash string) (reservation, error) {
	mu := &s.reserveLocks[maphash.String(s.lockSeed, scope)%uint64(len(s.reserveLocks))]
	mu.Lock()
	defer mu.Unlock()
	// Fixed before anyone is called, and kept across a dead process's reservation: a session
	// made under it is found by a retry, and a second run can never make another.
	resourceID := bridge.NewSessionID(c.Key.Mode)
	for {
		now := s.clock.Now()
		existing, err := s.store.ReserveIdempotency(ctx, &bridge.IdempotencyRecord{
			Key: scope, RequestHash: hash, CreatedAt: now, ExpiresAt: now.Add(s.idempotencyTTL), ResourceID: resourceID})
		if err != nil {
			return reservation{}, err
		}
		switch {
		case existing == nil:
			held := make(chan struct{})
			s.inflight.Store(scope, held)
			return reservation{held: held, resourceID: resourceID}, nil
		case existing.RequestHash != hash:
			return reservation{}, bridge.Errorf(bridge.CodeValidationError, "This Idempotency-Key was already used with a different request.").
				WithParam("Idempotency-Key").WithFix("Use a new Idempotency-Key for a new request; reuse a key only to retry the very same request.")
		case existing.Done:
			body, err := s.keyring.Open(existing.Body, []byte(scope))
			if err == nil {
				existing.Body = body
				return reservation{replay: existing}, nil
			}
			// Written under another master key, tampered with, or from before bodies were
			// sealed: answer the session the first run made, if it made one (running again
			// could make a second provider session); else run the request again rather than
			// replay what cannot be checked.
			if existing.ResourceID != "" {
				resourceID = existing.ResourceID
				if adopted, err := s.adoptSession(ctx, scope, resourceID); adopted != nil || err != nil {
					return reservation{replay: adopted}, err
				}
			}
			s.logger.ErrorContext(ctx, "stored idempotent response cannot be opened; running the request again", "err", err)
		default: // in flight
			if ch, ok := s.inflight.Load(scope); ok {
				return reservation{wait: ch.(chan struct{})}, nil
			}
			// Every reservation this process holds is in s.inflight, so this one was made by
			// another process: another node, or one that died mid-request (kill -9; the
			// reservation is durable, the process was not). holderAlive says which.
			alive, err := s.holderAlive(ctx, existing, now)
			if err != nil {
				return reservation{}, err
			}
			if alive {
				return reservation{poll: true}, nil
			}
			if existing.ResourceID != "" {
				// Whatever the dead run made keeps its id: if it stored the session (and so may
				// have reached VCC), the retry answers that session; if not, the rerun makes it
				// under the same id, so a run that was only slow cannot make a second.
				resourceID = existing.ResourceID
				if adopted, err := s.adoptSession(ctx, scope, resourceID); adopted != nil || err != nil {
					return reservation{replay: adopted}, err
				}
			}
			s.logger.WarnContext(ctx, "releasing an idempotency reservation whose process is gone", "reservedAt", existing.CreatedAt)
		}
		if err := s.store.ReleaseIdempotency(ctx, scope); err != nil && !errors.Is(err, bridge.ErrNotFound) {
			return reservation{}, err
		}
	}
}

// holderAlive reports whether the process holding an in-flight reservation made by another
// process may still finish it. On a store several nodes share, that is its node's liveness (a
// lease the node renews, lapsing within the store's lease time after it dies); on a single-node
// store, a reservation made before this process started belongs to a dead process. Either way a
// holder gets at most idempotencyStale.
func (s *Server) holderAlive(ctx context.Context, existing *bridge.IdempotencyRecord, now time.Time) (bool, error) {
	if now.Sub(existing.CreatedAt) > idempotencyStale {
		return false, nil
	}
	if nodes, ok := s.store.(bridge.NodeDirectory); ok && existing.Node != "" {
		return nodes.NodeAlive(ctx, existing.Node)
	}
	return !existing.CreatedAt.Before(s.started), nil
}

// adoptSession answers a retry of a create whose first run died after storing session id: the
// session as it stands now, recorded as the key's response so later retries replay it. Nil when
// the first run never stored it.
func (s *Server) adoptSession(ctx context.Context, scope, id string) (*bridge.IdempotencyRecord, error) {
	sess, err := s.store.Session(ctx, id)
	if errors.Is(err, bridge.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(sess.View())
	if err != nil {
		return nil, err
	}
	body = append(body, '\n')
	if err := s.store.CompleteIdempotency(ctx, scope, http.StatusCreated, s.keyring.Seal(body, []byte(scope))); err != nil {
		return nil, err
	}
	s.logger.WarnContext(ctx, "idempotent retry answered with the session its dead first run made", "session", id, "status", sess.Status)
	return &bridge.IdempotencyRecord{Key: scope, Done: true, Status: http.StatusCreated, Body: body}, nil
}

// finishInflight wakes the duplicates waiting on this process's request for scope. It runs after
// the record is completed or released, so they find the outcome. Once released, the scope may
// already be another request's, with its own channel: only held is removed.
func (s *Server) finishInflight(scope string, held chan struct{}) {
	s.inflight.CompareAndDelete(scope, held)
	close(held)
}

// replaceRequestID returns body with a top-level "requestId" set to id, so that a replayed error
// names the request it answers, like its X-Request-Id header. Anything else (not a JSON object,
// no requestId) is returned unchanged; the other members keep their order and bytes.
func replaceRequestID(body []byte, id string) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return body
	}
	var out bytes.Buffer
	out.WriteByte('{')
	found := false
	for dec.More() {
		t, err := dec.Token()
		name, ok := t.(string)
		if err != nil || !ok {
			return body
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return body
		}
		if name == "requestId" {
			value, _ = json.Marshal(id)
			found = true
		}
		if out.Len() > 1 {
			out.WriteByte(',')
		}
		quoted, _ := json.Marshal(name)
		out.Write(quoted)
		out.WriteByte(':')
		out.Write(value)
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') || !found {
		return body
	}
	out.WriteByte('}')
	out.Write(body[dec.InputOffset():]) // the trailing newline writeJSON adds
	return out.Bytes()
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
