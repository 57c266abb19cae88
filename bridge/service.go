package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of ServiceOptions.
const (
	DefaultProviderLifetime = 15 * time.Minute
	DefaultMaxAttempts      = 5
	DefaultSessionTTL       = 30 * time.Minute
	DefaultPollInterval     = 2 * time.Second
	DefaultPollConcurrency  = 8
	// pendingGrace is how long a session may stay pending (its VCC create in flight) before a
	// sweep decides the process that created it died mid-create.
	pendingGrace = 2 * time.Minute
	// backgroundTimeout bounds one session's background work (a poll and what it leads to), so
	// a slow VCC delays only that session, never the expiry of the others.
	backgroundTimeout = 20 * time.Second
	// refreshTimeout bounds the restarts a connecting agent waits for: past it, the agent gets
	// its snapshot as it is and a refused frame restarts the attempt later.
	refreshTimeout = 5 * time.Second
)

// ServiceOptions are the dependencies and settings of a Service.
type ServiceOptions struct {
	Store     Store
	Merchants MerchantDirectory
	Provider  PaymentProvider
	Publisher Publisher
	Keyring   *Keyring
	Clock     Clock        // nil: SystemClock
	Logger    *slog.Logger // nil: discard

	ProviderLifetime time.Duration // how long a provider session lives (15m)
	MaxAttempts      int           // provider sessions per payment session (5)
	DefaultTTL       time.Duration // session TTL when the request gives none (30m)
	PollInterval     time.Duration // VCC status polling per active session (2s, jittered)
	PollConcurrency  int           // status polls in flight at once (8)
	SweepInterval    time.Duration // how often Run looks for due polls and expiries (PollInterval/8, at least 10ms)
}

// Service runs the session lifecycle: create, hand off, restart, learn and verify the outcome,
// expire. It is safe for concurrent use. Every change to one session happens under that
// session's lock, so concurrent triggers produce exactly one new attempt.
type Service struct {
	store     Store
	merchants MerchantDirectory
	provider  PaymentProvider
	publisher Publisher
	keyring   *Keyring
	clock     Clock
	logger    *slog.Logger

	lifetime        time.Duration
	maxAttempts     int
	defaultTTL      time.Duration
	pollInterval    time.Duration
	pollConcurrency int
	sweepInterval   time.Duration

	locks   keyedMutex
	tracker tracker
	stats   serviceCounters
}

// serviceCounters count what the service did, for metrics.
type serviceCounters struct {
	created, restarts, polls, pollErrors atomic.Int64
	terminal                             [4]atomic.Int64 // succeeded, failed, expired, cancelled
}

// ServiceStats are the service's counters since it started.
type ServiceStats struct {
	SessionsCreated int64            // sessions that reached VCC and became active
	Restarts        int64            // new attempts after the first
	Polls           int64            // VCC status requests made by the poller
	PollErrors      int64            // of which failed
	Terminal        map[Status]int64 // sessions that ended, by final status
	OpenSessions    int              // pending and active sessions now
}

var terminalStatuses = [4]Status{StatusSucceeded, StatusFailed, StatusExpired, StatusCancelled}

// Stats returns the service's counters.
func (s *Service) Stats() ServiceStats {
	st := ServiceStats{
		SessionsCreated: s.stats.created.Load(), Restarts: s.stats.restarts.Load(),
		Polls: s.stats.polls.Load(), PollErrors: s.stats.pollErrors.Load(),
		Terminal: make(map[Status]int64, len(terminalStatuses)), OpenSessions: s.tracker.size(),
	}
	for i, status := range terminalStatuses {
		st.Terminal[status] = s.stats.terminal[i].Load()
	}
	return st
}

// NewService checks opts and returns a Service. Call Run to poll and expire in the background.
func NewService(opts ServiceOptions) (*Service, error) {
	if opts.Store == nil || opts.Merchants == nil || opts.Provider == nil || opts.Publisher == nil || opts.Keyring == nil {
		return nil, errors.New("bridge: NewService needs Store, Merchants, Provider, Publisher and Keyring")
	}
	s := &Service{
		store: opts.Store, merchants: opts.Merchants, provider: opts.Provider,
		publisher: opts.Publisher, keyring: opts.Keyring, clock: opts.Clock, logger: opts.Logger,
		lifetime: opts.ProviderLifetime, maxAttempts: opts.MaxAttempts, defaultTTL: opts.DefaultTTL,
		pollInterval: opts.PollInterval, pollConcurrency: opts.PollConcurrency, sweepInterval: opts.SweepInterval,
	}
	if s.clock == nil {
		s.clock = SystemClock{}
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.lifetime = orDefault(s.lifetime, DefaultProviderLifetime)
	s.defaultTTL = orDefault(s.defaultTTL, DefaultSessionTTL)
	s.pollInterval = orDefault(s.pollInterval, DefaultPollInterval)
	s.sweepInterval = orDefault(s.sweepInterval, max(s.pollInterval/8, 10*time.Millisecond))
	if s.maxAttempts <= 0 {
		s.maxAttempts = DefaultMaxAttempts
	}
	if s.pollConcurrency <= 0 {
		s.pollConcurrency = DefaultPollConcurrency
	}
	s.tracker.items = make(map[string]*tracked)
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// ProviderLifetime returns how long a provider session is expected to live.
func (s *Service) ProviderLifetime() time.Duration { return s.lifetime }

// Scope restricts which sessions a caller may see: one merchant in one mode and, for a browser
// caller holding an agent token, one agent.
type Scope struct {
	MerchantID string
	Mode       Mode
	AgentID    string // "" for a secret key: every agent
}

// errStaleAttempt marks a trigger about an attempt that is no longer current; it is ignored.
var errStaleAttempt = errors.New("report about an older attempt")

// CreateSession validates in, starts the first provider session through VCC, pushes its handoff
// to the agent's sockets and returns the active session. A VCC failure answers with the mapped
// error and leaves the session failed, for audit.
func (s *Service) CreateSession(ctx context.Context, in *CreateSessionInput) (*Session, error) {
	m, err := s.CheckCreate(ctx, in)
	if err != nil {
		return nil, err
	}
	ttl := in.ExpiresIn
	if ttl == 0 {
		ttl = s.defaultTTL
	}
	now := s.clock.Now().UTC()
	sess := &Session{
		ID: NewSessionID(in.Mode), MerchantID: m.ID, Mode: in.Mode, AgentID: in.AgentID,
		Channel: in.Channel, Amount: in.Amount, Currency: in.Currency, Country: in.Country,
		AccountConfigurationID: in.AccountConfigurationID, Reference: in.Reference,
		Customer: in.Customer, LineItems: in.LineItems, Metadata: in.Metadata,
		SuccessURL: in.SuccessURL, CancelURL: in.CancelURL,
		Status: StatusPending, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(ttl),
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return nil, fmt.Errorf("store session: %w", err)
	}
	unlock := s.locks.lock(sess.ID)
	defer unlock()

	ps, err := s.provider.CreateSession(ctx, m, s.providerRequest(sess, m))
	if err != nil {
		pub := AsError(err)
		s.logger.WarnContext(ctx, "vcc create failed", "session", sess.ID, "merchant", m.ID, "code", pub.Code, "err", err)
		// The caller gets the mapped error; the record stays, failed, for audit. A background
		// context: the request may be cancelled already, the record must still be written.
		if _, ferr := s.finishLocked(context.WithoutCancel(ctx), sess, m, StatusFailed, nil, &Failure{Code: pub.Code, Error: pub.Message}, nil); ferr != nil {
			s.logger.ErrorContext(ctx, "record failed session", "session", sess.ID, "err", ferr)
		}
		return nil, err
	}
	active := sess.Clone()
	active.Status = StatusActive
	active.UpdatedAt = s.clock.Now().UTC()
	active.Attempts = []Attempt{s.newAttempt(sess.ID, 1, ps, active.UpdatedAt)}
	// Push first: the agent is waiting, and the handoff budget is counted from VCC's answer.
	s.publishHandoff(active)
	stored, err := s.store.UpdateSession(context.WithoutCancel(ctx), sess.ID, func(x *Session, _ *Outbox) error {
		if err := x.SetStatus(StatusActive, active.UpdatedAt); err != nil {
			return err
		}
		x.Attempts = active.Attempts
		return nil
	})
	if err != nil {
		// The handoff already went out: tell the agent it is void. The record stays pending and
		// the sweep fails it once the store is back.
		void := active.Clone()
		void.Status = StatusFailed
		s.publish(void, EventFailed, "", SessionEventData{Session: void.View(), Code: CodeInternalError,
			Error: "paybridge could not record the session.", Fix: Info(CodeInternalError).Fix})
		return nil, fmt.Errorf("activate session: %w", err)
	}
	stored.Attempts[0].BearerToken, stored.Attempts[0].RefreshToken = ps.AgentAccessToken, ps.AgentRefreshToken
	s.tracker.track(stored, s.nextPoll(stored.UpdatedAt))
	s.stats.created.Add(1)
	s.logger.InfoContext(ctx, "session active", "session", stored.ID, "merchant", m.ID, "agent", stored.AgentID, "vccSession", ps.SessionGUID)
	return stored, nil
}

// CheckCreate applies every rule a create must pass before VCC is called, the merchant's own
// included (VCC credentials, allowed account configurations), and fills the defaults. A dry run
// is exactly this.
func (s *Service) CheckCreate(ctx context.Context, in *CreateSessionInput) (*Merchant, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	m, err := s.merchant(ctx, in.MerchantID)
	if err != nil {
		return nil, err
	}
	if !m.VCC.Configured() {
		return nil, Errorf(CodeMerchantNotConfigured, "Merchant %q has no VCC credentials configured.", m.ID).
			WithFix("Your paybridge operator must set the merchant's vcc.clientId, vcc.clientSecret, vcc.tokenUrl and vcc.apiBaseUrl (or vcc.region).")
	}
	if in.AccountConfigurationID == 0 {
		in.AccountConfigurationID = m.VCC.DefaultAccountConfigurationID
	} else if !m.VCC.AllowsConfiguration(in.AccountConfigurationID) {
		return nil, invalid("accountConfigurationId", "accountConfigurationId %d is not one this merchant allows (allowed: %s)",
			in.AccountConfigurationID, joinInts(m.VCC.AccountConfigurationIDs)).
			WithFix("Use one of the account configuration IDs Vonage supplied and your operator listed in vcc.accountConfigurationIds, or omit the field to use the default.")
	}
	return m, nil
}

// Session returns the session id within scope, expiring it first if its TTL has passed.
func (s *Service) Session(ctx context.Context, sc Scope, id string) (*Session, error) {
	sess, err := s.scoped(ctx, sc, id)
	if err != nil {
		return nil, err
	}
	if sess.Status.Terminal() || s.clock.Now().Before(sess.ExpiresAt) {
		return sess, nil
	}
	unlock := s.locks.lock(id)
	defer unlock()
	return s.reload(ctx, id)
}

// ListSessions returns the sessions f selects, newest first.
func (s *Service) ListSessions(ctx context.Context, f SessionFilter) ([]*Session, error) {
	list, err := s.store.ListSessions(ctx, f)
	if errors.Is(err, ErrNotFound) {
		return nil, invalid("starting_after", "starting_after %q is not a session of yours", f.StartingAfter)
	}
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	for i, sess := range list {
		if !sess.Status.Terminal() && !now.Before(sess.ExpiresAt) {
			// Show what a GET would show; the sweep records the transition.
			c := sess.Clone()
			c.Status = StatusExpired
			list[i] = c
		}
	}
	return list, nil
}

// CancelSession cancels an open session. If VCC already has the payment result, that result wins
// and the cancel answers session_wrong_state; while the customer is keying, the cancel is refused.
func (s *Service) CancelSession(ctx context.Context, sc Scope, id string) (*Session, error) {
	if _, err := s.scoped(ctx, sc, id); err != nil {
		return nil, err
	}
	unlock := s.locks.lock(id)
	defer unlock()
	sess, err := s.reload(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.checkOpen(sess, "cancelling"); err != nil {
		return nil, err
	}
	m, err := s.merchant(ctx, sess.MerchantID)
	if err != nil {
		return nil, err
	}
	if a := sess.Current(); a != nil {
		st, err := s.provider.SessionStatus(ctx, m, a.SessionGUID)
		switch {
		case err == nil && st.CaptureInProgress():
			return nil, keyingError("cancelled")
		case err == nil && st.Completed():
			done, err := s.applyOutcomeLocked(ctx, sess, m, st)
			if err != nil {
				return nil, err
			}
			return nil, WrongState(done.Status, "cancelling")
		case err != nil && !errors.Is(err, ErrNotFound):
			// VCC cannot tell us; cancelling is still what the merchant asked for.
			s.logger.WarnContext(ctx, "vcc status before cancel", "session", id, "err", err)
		}
	}
	return s.finishLocked(ctx, sess, m, StatusCancelled, nil, nil, nil)
}

// RestartSession starts a new provider session for an active session on request (DESIGN section
// 3, trigger 4). If VCC turns out to have the payment's result already, that result is applied
// and answered instead: session_wrong_state for a success, the failure's own code otherwise.
func (s *Service) RestartSession(ctx context.Context, sc Scope, id string) (*Session, error) {
	if _, err := s.scoped(ctx, sc, id); err != nil {
		return nil, err
	}
	sess, err := s.restart(ctx, id, restartRequest{reason: EndRestartRequested})
	if err != nil {
		return nil, err
	}
	switch {
	case sess.Status == StatusSucceeded:
		return nil, WrongState(sess.Status, "a restart").WithFix("The customer has paid: VCC reported the payment before the restart. Nothing needs restarting.")
	case sess.Status == StatusFailed && sess.Failure != nil:
		return nil, &Error{Code: sess.Failure.Code, Message: sess.Failure.Error}
	}
	return sess, nil
}

// FrameRefused handles the widget's report that the provider refused attempt's frame (trigger 1).
// A report about an older attempt, or about a session that is no longer active, is ignored.
func (s *Service) FrameRefused(ctx context.Context, agent AgentRef, sessionID string, attempt int) error {
	sc := Scope{MerchantID: agent.MerchantID, Mode: agent.Mode, AgentID: agent.AgentID}
	if _, err := s.scoped(ctx, sc, sessionID); err != nil {
		return err
	}
	if attempt <= 0 {
		return invalid("attempt", "frame.refused needs the attempt number it is about")
	}
	_, err := s.restart(ctx, sessionID, restartRequest{attempt: attempt, reason: EndFrameRefused})
	if errors.Is(err, errStaleAttempt) {
		s.logger.DebugContext(ctx, "ignored frame.refused for an older attempt", "session", sessionID, "attempt", attempt)
		return nil
	}
	return err
}

// ProviderNotified handles a hint from merchantID's VCC that a provider session changed (its
// webhook): the status is fetched from VCC and applied, never taken from the hint itself. A hint
// about an unknown session, or another merchant's, changes nothing.
func (s *Service) ProviderNotified(ctx context.Context, merchantID, sessionGUID string) error {
	sess, err := s.store.SessionByGUID(ctx, sessionGUID)
	if errors.Is(err, ErrNotFound) || (err == nil && sess.MerchantID != merchantID) {
		s.logger.InfoContext(ctx, "vcc notification for an unknown session", "vccSession", sessionGUID, "merchant", merchantID)
		return nil
	}
	if err != nil {
		return err
	}
	if a := sess.AttemptByGUID(sessionGUID); a == nil || a.Number != len(sess.Attempts) {
		return nil // about a replaced attempt: nothing to do
	}
	return s.poll(ctx, sess.ID)
}

// MerchantFor returns the merchant with id.
func (s *Service) MerchantFor(ctx context.Context, id string) (*Merchant, error) {
	return s.merchant(ctx, id)
}

// restartRequest describes one restart trigger.
type restartRequest struct {
	attempt int             // the attempt the trigger is about; 0: whatever is current
	reason  EndReason       // recorded on the attempt that ends
	status  *ProviderStatus // VCC's view, when the trigger came from VCC; nil: ask VCC
}

// restart applies DESIGN section 3's rules: never while the customer is keying or after a
// terminal status; older attempts' reports ignored; at most maxAttempts attempts.
func (s *Service) restart(ctx context.Context, id string, req restartRequest) (*Session, error) {
	unlock := s.locks.lock(id)
	defer unlock()
	sess, err := s.reload(ctx, id)
	if err != nil {
		return nil, err
	}
	if req.attempt != 0 && (sess.Current() == nil || sess.Current().Number != req.attempt) {
		return sess, errStaleAttempt
	}
	if err := s.checkOpen(sess, "a restart"); err != nil {
		if req.attempt != 0 {
			return sess, errStaleAttempt // a report that lost the race with the end of the session
		}
		return nil, err
	}
	if sess.Status != StatusActive {
		return nil, WrongState(sess.Status, "a restart")
	}
	m, err := s.merchant(ctx, sess.MerchantID)
	if err != nil {
		return nil, err
	}
	cur := sess.Current()
	st := req.status
	if st == nil {
		st, err = s.provider.SessionStatus(ctx, m, cur.SessionGUID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	if st != nil {
		if st.CaptureInProgress() {
			return nil, keyingError("restarted")
		}
		if st.Completed() {
			return s.applyOutcomeLocked(ctx, sess, m, st)
		}
	}
	if len(sess.Attempts) >= s.maxAttempts {
		msg := fmt.Sprintf("The payment page could not be shown after %d attempts (ATTESTATION_EXPIRED): the provider session kept ending before the agent's browser loaded it.", len(sess.Attempts))
		s.logger.WarnContext(ctx, "restarts exhausted", "session", id, "attempts", len(sess.Attempts))
		done, err := s.finishLocked(ctx, sess, m, StatusFailed, nil, &Failure{Code: CodeProviderAttestationFailed, Error: msg}, nil)
		if err != nil {
			return nil, err
		}
		return done, Errorf(CodeProviderAttestationFailed, "%s", msg)
	}

	s.publish(sess, EventRestarting, "", SessionEventData{Session: sess.View(), Reason: string(req.reason)})
	ps, err := s.provider.CreateSession(ctx, m, s.providerRequest(sess, m))
	if err != nil {
		pub := AsError(err)
		s.logger.WarnContext(ctx, "vcc create for restart failed", "session", id, "code", pub.Code, "err", err)
		s.publish(sess, EventError, "", SessionEventData{Session: sess.View(), Code: pub.Code, Error: pub.Message, Fix: pub.PublicFix()})
		return nil, err
	}
	now := s.clock.Now().UTC()
	next := sess.Clone()
	next.UpdatedAt = now
	next.Current().EndedAt, next.Current().EndReason = now, req.reason
	next.Attempts = append(next.Attempts, s.newAttempt(id, cur.Number+1, ps, now))
	s.publishHandoff(next)
	stored, err := s.store.UpdateSession(context.WithoutCancel(ctx), id, func(x *Session, _ *Outbox) error {
		if x.Status != StatusActive || len(x.Attempts) != len(sess.Attempts) {
			return ErrConflict // only possible if another node changed it; nothing to hand off
		}
		x.UpdatedAt, x.Attempts = now, next.Attempts
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record restart: %w", err)
	}
	s.tracker.track(stored, s.nextPoll(now))
	s.stats.restarts.Add(1)
	s.logger.InfoContext(ctx, "session restarted", "session", id, "attempt", cur.Number+1, "reason", req.reason, "vccSession", ps.SessionGUID)
	return stored, nil
}

func keyingError(what string) *Error {
	return Errorf(CodeSessionWrongState, "The customer is keying card details right now; the session cannot be %s until they finish.", what).
		WithFix("Wait for the payment to finish; paybridge reports the outcome by itself.")
}

// poll asks VCC for the current attempt's status and acts on it.
func (s *Service) poll(ctx context.Context, id string) error {
	sess, err := s.store.Session(ctx, id)
	if err != nil {
		return err
	}
	if sess.Status != StatusActive {
		if sess.Status.Terminal() {
			s.tracker.untrack(id)
		}
		return nil
	}
	m, err := s.merchant(ctx, sess.MerchantID)
	if err != nil {
		return err
	}
	a := sess.Current()
	st, err := s.provider.SessionStatus(ctx, m, a.SessionGUID)
	s.stats.polls.Add(1)
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.stats.pollErrors.Add(1)
	}
	if errors.Is(err, ErrNotFound) {
		// VCC no longer knows the provider session: it ended (and was purged) without a result.
		st, err = &ProviderStatus{SessionGUID: a.SessionGUID, State: StateExpired}, nil
	}
	if err != nil {
		return err
	}
	return s.applyStatus(ctx, id, st)
}

// applyStatus acts on VCC's view of one provider session of session id.
func (s *Service) applyStatus(ctx context.Context, id string, st *ProviderStatus) error {
	switch {
	case st.Completed():
		unlock := s.locks.lock(id)
		defer unlock()
		sess, err := s.reload(ctx, id)
		if err != nil {
			return err
		}
		m, err := s.merchant(ctx, sess.MerchantID)
		if err != nil {
			return err
		}
		_, err = s.applyOutcomeLocked(ctx, sess, m, st)
		return err
	case st.EndedWithoutPayment():
		sess, err := s.store.Session(ctx, id)
		if err != nil {
			return err
		}
		a := sess.AttemptByGUID(st.SessionGUID)
		if a == nil || a.Number != len(sess.Attempts) {
			return nil // an older attempt ended: expected, it was replaced
		}
		_, err = s.restart(ctx, id, restartRequest{attempt: a.Number, reason: EndProviderExpired, status: st})
		if errors.Is(err, errStaleAttempt) {
			return nil
		}
		return err
	case st.ProviderSessionGUID != "":
		return s.recordProviderGUID(ctx, id, st)
	}
	return nil
}

// recordProviderGUID keeps the provider's own session id for reconciliation, once.
func (s *Service) recordProviderGUID(ctx context.Context, id string, st *ProviderStatus) error {
	sess, err := s.store.Session(ctx, id)
	if err != nil {
		return err
	}
	if a := sess.AttemptByGUID(st.SessionGUID); a == nil || a.ProviderSessionGUID == st.ProviderSessionGUID {
		return nil
	}
	_, err = s.store.UpdateSession(ctx, id, func(x *Session, _ *Outbox) error {
		if a := x.AttemptByGUID(st.SessionGUID); a != nil {
			a.ProviderSessionGUID = st.ProviderSessionGUID
		}
		return nil
	})
	return err
}

// applyOutcomeLocked turns a completed VCC result into succeeded or failed, verifying amount and
// currency first. Results about an older attempt are not applied (they are logged loudly: money
// may have moved on a replaced page, and someone must reconcile it).
func (s *Service) applyOutcomeLocked(ctx context.Context, sess *Session, m *Merchant, st *ProviderStatus) (*Session, error) {
	a := sess.AttemptByGUID(st.SessionGUID)
	if a == nil || sess.Status.Terminal() || a.Number != len(sess.Attempts) {
		if st.Decision == DecisionAccept {
			s.logger.ErrorContext(ctx, "payment accepted on a session or attempt that is no longer current: reconcile with VCC",
				"session", sess.ID, "status", sess.Status, "vccSession", st.SessionGUID)
		}
		return sess, nil
	}
	result := &Result{Decision: st.Decision, ReasonCode: st.ReasonCode, TransactionID: st.TransactionID}
	guard := func(x *Session) error {
		if c := x.Current(); c == nil || c.SessionGUID != st.SessionGUID {
			return errStaleAttempt
		}
		if st.ProviderSessionGUID != "" {
			x.Current().ProviderSessionGUID = st.ProviderSessionGUID
		}
		return nil
	}
	var done *Session
	var err error
	switch {
	case st.Decision != DecisionAccept:
		msg := fmt.Sprintf("The provider did not take the payment (decision %s", st.Decision)
		if st.ReasonCode != "" {
			msg += ", reason code " + st.ReasonCode
		}
		done, err = s.finishLocked(ctx, sess, m, StatusFailed, result, &Failure{Code: CodeProviderChargeFailed, Error: msg + ")."}, guard)
	case !s.verified(sess, st):
		msg := fmt.Sprintf("VCC reported %s %s for a session of %d %s; the payment was not marked as succeeded.",
			orUnknown(st.Amount), orUnknown(st.Currency), sess.Amount, sess.Currency)
		s.logger.ErrorContext(ctx, "transaction verification failed", "session", sess.ID, "vccSession", st.SessionGUID)
		done, err = s.finishLocked(ctx, sess, m, StatusFailed, result, &Failure{Code: CodeTransactionVerificationFailed, Error: msg}, guard)
	default:
		done, err = s.finishLocked(ctx, sess, m, StatusSucceeded, result, nil, guard)
	}
	if errors.Is(err, errStaleAttempt) {
		return sess, nil
	}
	return done, err
}

// verified reports whether VCC's result is for exactly the session's amount and currency. VCC
// reports the result amount in minor units.
func (s *Service) verified(sess *Session, st *ProviderStatus) bool {
	amount, err := strconv.ParseInt(strings.TrimSpace(st.Amount), 10, 64)
	return err == nil && amount == sess.Amount && strings.EqualFold(strings.TrimSpace(st.Currency), sess.Currency)
}

func orUnknown(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// finishLocked moves sess to a terminal status, with the merchant webhook in the same
// transaction, then tells the agent. guard, if set, runs first inside the transaction.
func (s *Service) finishLocked(ctx context.Context, sess *Session, m *Merchant, to Status, result *Result, failure *Failure, guard func(*Session) error) (*Session, error) {
	now := s.clock.Now().UTC()
	eventID := NewEventID()
	done, err := s.store.UpdateSession(ctx, sess.ID, func(x *Session, out *Outbox) error {
		if guard != nil {
			if err := guard(x); err != nil {
				return err
			}
		}
		if err := x.SetStatus(to, now); err != nil {
			return err
		}
		x.Result, x.Failure = result, failure
		if m.Webhook.URL != "" {
			msg, err := webhookMessage(eventID, m.ID, x, now)
			if err != nil {
				return err
			}
			out.Add(msg)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.tracker.untrack(sess.ID)
	for i, status := range terminalStatuses {
		if status == to {
			s.stats.terminal[i].Add(1)
		}
	}
	data := SessionEventData{Session: done.View()}
	if failure != nil {
		data.Code, data.Error, data.Fix = failure.Code, failure.Error, Info(failure.Code).Fix
	}
	s.publish(done, TerminalEvent(to), eventID, data)
	s.logger.InfoContext(ctx, "session "+string(to), "session", done.ID, "merchant", done.MerchantID, "code", data.Code)
	return done, nil
}

// WebhookPayload is the body of a merchant webhook (DESIGN section 3).
type WebhookPayload struct {
	ID       string       `json:"id"`
	Type     EventType    `json:"type"`
	Created  int64        `json:"created"`
	Livemode bool         `json:"livemode"`
	Data     *SessionView `json:"data"`
}

func webhookMessage(eventID, merchantID string, sess *Session, now time.Time) (*OutboxMessage, error) {
	typ := TerminalEvent(sess.Status)
	body, err := json.Marshal(WebhookPayload{ID: eventID, Type: typ, Created: now.Unix(), Livemode: sess.Mode == ModeLive, Data: sess.View()})
	if err != nil {
		return nil, err
	}
	return &OutboxMessage{ID: eventID, MerchantID: merchantID, Type: typ, Payload: body, CreatedAt: now, NextAttemptAt: now}, nil
}

// reload reads session id and, if its TTL has passed while it was open, expires it. Call it with
// the session's lock held.
func (s *Service) reload(ctx context.Context, id string) (*Session, error) {
	sess, err := s.store.Session(ctx, id)
	if err != nil {
		return nil, s.notFound(err)
	}
	if sess.Status.Terminal() || s.clock.Now().Before(sess.ExpiresAt) {
		return sess, nil
	}
	m, err := s.merchant(ctx, sess.MerchantID)
	if err != nil {
		return nil, err
	}
	return s.finishLocked(ctx, sess, m, StatusExpired, nil, nil, nil)
}

// checkOpen answers 410 for an expired session and 409 for any other terminal one.
func (s *Service) checkOpen(sess *Session, operation string) error {
	switch {
	case sess.Status == StatusExpired:
		return Errorf(CodeSessionExpired, "Session %s expired at %s.", sess.ID, sess.ExpiresAt.Format(time.RFC3339))
	case sess.Status.Terminal():
		return WrongState(sess.Status, operation)
	}
	return nil
}

// scoped returns session id if sc may see it, else session_not_found (never saying which).
func (s *Service) scoped(ctx context.Context, sc Scope, id string) (*Session, error) {
	if ModeOfSessionID(id) == "" {
		return nil, s.notFound(ErrNotFound)
	}
	sess, err := s.store.Session(ctx, id)
	if err != nil {
		return nil, s.notFound(err)
	}
	if sess.MerchantID != sc.MerchantID || sess.Mode != sc.Mode || (sc.AgentID != "" && sess.AgentID != sc.AgentID) {
		return nil, s.notFound(ErrNotFound)
	}
	if err := s.checkIntegrity(sess); err != nil {
		s.logger.ErrorContext(ctx, "session integrity check failed", "session", id, "err", err)
		return nil, err
	}
	return sess, nil
}

// checkIntegrity answers session_integrity_error when stored data breaks an invariant the
// lifecycle relies on, or when the current attempt's sealed tokens cannot be opened (the master
// key changed since they were sealed, or the record was altered).
func (s *Service) checkIntegrity(sess *Session) error {
	var problem string
	for i, a := range sess.Attempts {
		if a.Number != i+1 {
			problem = fmt.Sprintf("attempt %d is numbered %d", i+1, a.Number)
		}
	}
	switch {
	case problem != "":
	case sess.Status == StatusActive && len(sess.Attempts) == 0:
		problem = "active without an attempt"
	case sess.Status == StatusSucceeded && sess.Result == nil:
		problem = "succeeded without a result"
	case sess.Status == StatusFailed && sess.Failure == nil:
		problem = "failed without a failure"
	case sess.Status == StatusActive:
		if err := s.openTokens(sess.Clone()); err != nil {
			problem = "sealed provider tokens do not open with the current master key"
		}
	}
	if problem == "" {
		return nil
	}
	return Errorf(CodeSessionIntegrityError, "Session %s failed an integrity check.", sess.ID).WithCause(errors.New(problem))
}

func (s *Service) notFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return Errorf(CodeSessionNotFound, "No such session.").WithParam("id")
	}
	return err
}

func (s *Service) merchant(ctx context.Context, id string) (*Merchant, error) {
	m, err := s.merchants.Merchant(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, Errorf(CodeMerchantNotConfigured, "Merchant %q is not configured on this paybridge.", id)
	}
	return m, err
}

func (s *Service) providerRequest(sess *Session, m *Merchant) *ProviderRequest {
	return &ProviderRequest{
		Channel: sess.Channel, AgentID: sess.AgentID, AccountConfigurationID: sess.AccountConfigurationID,
		Amount: sess.Amount, Currency: sess.Currency, Country: sess.Country, Reference: sess.Reference,
		Customer: sess.Customer, SkipCallTransfer: m.VCC.SkipCallTransfer && sess.Mode == ModeTest,
	}
}

// newAttempt records a provider session; its tokens stay in memory and go to storage sealed,
// bound to the session and attempt so a sealed value cannot be replayed elsewhere.
func (s *Service) newAttempt(sessionID string, n int, ps *ProviderSession, now time.Time) Attempt {
	a := Attempt{
		Number: n, SessionGUID: ps.SessionGUID, IframeURL: ps.IframeURL, CustomerURL: ps.CustomerURL,
		BearerToken: ps.AgentAccessToken, RefreshToken: ps.AgentRefreshToken, StartedAt: now,
	}
	if a.BearerToken != "" || a.RefreshToken != "" {
		plain, _ := json.Marshal([2]string{a.BearerToken, a.RefreshToken})
		a.SealedTokens = s.keyring.Seal(plain, sealContext(sessionID, n))
	}
	return a
}

func sealContext(sessionID string, attempt int) []byte {
	return []byte(sessionID + "#" + strconv.Itoa(attempt))
}

// openTokens fills the current attempt's tokens from their sealed form.
func (s *Service) openTokens(sess *Session) error {
	a := sess.Current()
	if a == nil || len(a.SealedTokens) == 0 || a.BearerToken != "" {
		return nil
	}
	plain, err := s.keyring.Open(a.SealedTokens, sealContext(sess.ID, a.Number))
	var pair [2]string
	if err == nil {
		err = json.Unmarshal(plain, &pair)
	}
	if err != nil {
		return Errorf(CodeSessionIntegrityError, "The provider tokens of session %s could not be opened.", sess.ID).WithCause(err)
	}
	a.BearerToken, a.RefreshToken = pair[0], pair[1]
	return nil
}

// HandoffEventData is the data of a session.handoff event.
type HandoffEventData struct {
	*Handoff
	Session *SessionView `json:"session"`
}

func (s *Service) publishHandoff(sess *Session) {
	if h := sess.Handoff(s.lifetime); h != nil {
		s.publish(sess, EventHandoff, "", HandoffEventData{Handoff: h, Session: sess.View()})
	}
}

func (s *Service) publish(sess *Session, typ EventType, id string, data any) {
	if id == "" {
		id = NewEventID()
	}
	s.publisher.Publish(&Event{
		Agent: AgentRef{MerchantID: sess.MerchantID, Mode: sess.Mode, AgentID: sess.AgentID},
		Type:  typ, ID: id, SessionID: sess.ID, Data: data,
	})
}

// ReadyData is the data of the ready event a socket gets first: who it is and the agent's open
// sessions with their current handoffs.
type ReadyData struct {
	MerchantID string          `json:"merchantId"`
	Mode       Mode            `json:"mode"`
	AgentID    string          `json:"agentId"`
	Sessions   []SnapshotEntry `json:"sessions"`
}

// SnapshotEntry is one open session in a ready snapshot.
type SnapshotEntry struct {
	Session *SessionView `json:"session"`
	Handoff *Handoff     `json:"handoff,omitempty"`
}

// RefreshAgent restarts every open session of agent whose current attempt is older than the
// provider lifetime (trigger 2): call it when an agent's socket connects, before the snapshot, so
// a reconnecting agent never gets a page the provider will refuse.
func (s *Service) RefreshAgent(ctx context.Context, agent AgentRef) error {
	if err := s.ensureLoaded(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	sc := Scope{MerchantID: agent.MerchantID, Mode: agent.Mode, AgentID: agent.AgentID}
	for _, id := range s.tracker.ofAgent(agent) {
		sess, err := s.Session(ctx, sc, id)
		if err != nil {
			continue
		}
		a := sess.Current()
		if sess.Status != StatusActive || a == nil || s.clock.Now().Before(a.StartedAt.Add(s.lifetime)) {
			continue
		}
		if _, err := s.restart(ctx, id, restartRequest{attempt: a.Number, reason: EndLifetimeElapsed}); err != nil && !errors.Is(err, errStaleAttempt) {
			s.logger.WarnContext(ctx, "restart on reconnect", "session", id, "err", err)
		}
	}
	return nil
}

// AgentSnapshot returns agent's open sessions with their current handoffs.
func (s *Service) AgentSnapshot(ctx context.Context, agent AgentRef) (*ReadyData, error) {
	if err := s.ensureLoaded(ctx); err != nil {
		return nil, err
	}
	out := &ReadyData{MerchantID: agent.MerchantID, Mode: agent.Mode, AgentID: agent.AgentID, Sessions: []SnapshotEntry{}}
	sc := Scope{MerchantID: agent.MerchantID, Mode: agent.Mode, AgentID: agent.AgentID}
	for _, id := range s.tracker.ofAgent(agent) {
		sess, err := s.Session(ctx, sc, id)
		if err != nil {
			s.logger.WarnContext(ctx, "snapshot session", "session", id, "err", err)
			continue
		}
		if sess.Status.Terminal() {
			continue
		}
		entry := SnapshotEntry{Session: sess.View()}
		if err := s.openTokens(sess); err != nil {
			s.logger.ErrorContext(ctx, "snapshot tokens", "session", id, "err", err)
		} else {
			entry.Handoff = sess.Handoff(s.lifetime)
		}
		out.Sessions = append(out.Sessions, entry)
	}
	return out, nil
}

// Run resumes tracking the open sessions in the store and then, until ctx ends, polls VCC for
// active sessions and expires those past their TTL.
func (s *Service) Run(ctx context.Context) error {
	if err := s.ensureLoaded(ctx); err != nil {
		s.logger.ErrorContext(ctx, "load open sessions", "err", err)
	}
	t := time.NewTicker(s.sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.Sweep(ctx)
		}
	}
}

// Sweep does one round of background work, due by the service's clock: expire sessions past
// their TTL, fail sessions left pending by a process that died mid-create, and poll VCC for
// active sessions whose poll is due. It returns when that round is done.
func (s *Service) Sweep(ctx context.Context) {
	if err := s.ensureLoaded(ctx); err != nil {
		s.logger.ErrorContext(ctx, "load open sessions", "err", err)
		return
	}
	now := s.clock.Now()
	due := s.tracker.due(now)
	sem := make(chan struct{}, s.pollConcurrency)
	var wg sync.WaitGroup
	for _, d := range due {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(ctx, backgroundTimeout)
			defer cancel()
			var err error
			switch {
			case !now.Before(d.expiresAt):
				unlock := s.locks.lock(d.id)
				_, err = s.reload(ctx, d.id)
				unlock()
			case d.pending:
				err = s.failAbandoned(ctx, d.id)
			default:
				err = s.poll(ctx, d.id)
			}
			if err != nil && ctx.Err() == nil {
				s.logger.WarnContext(ctx, "background session work", "session", d.id, "err", err)
			}
			s.tracker.done(d.id, s.nextPoll(s.clock.Now()))
		})
	}
	wg.Wait()
}

// failAbandoned fails a session whose create never finished (the process stopped during it).
func (s *Service) failAbandoned(ctx context.Context, id string) error {
	unlock := s.locks.lock(id)
	defer unlock()
	sess, err := s.reload(ctx, id)
	if err != nil || sess.Status != StatusPending {
		return err
	}
	m, err := s.merchant(ctx, sess.MerchantID)
	if err != nil {
		return err
	}
	_, err = s.finishLocked(ctx, sess, m, StatusFailed, nil, &Failure{Code: CodeInternalError,
		Error: "paybridge stopped while starting this session; create a new session."}, nil)
	return err
}

// nextPoll spreads polls by ±20% so sessions created together do not poll together.
func (s *Service) nextPoll(now time.Time) time.Time {
	jitter := 0.8 + 0.4*rand.Float64()
	return now.Add(time.Duration(float64(s.pollInterval) * jitter))
}

// ensureLoaded fills the tracker from the store's open sessions once; after a restart this is
// what resumes polling and expiry.
func (s *Service) ensureLoaded(ctx context.Context) error {
	s.tracker.loadMu.Lock()
	defer s.tracker.loadMu.Unlock()
	if s.tracker.loaded {
		return nil
	}
	open, err := s.store.OpenSessions(ctx)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	for _, sess := range open {
		s.tracker.trackIfAbsent(sess, now, now.Add(pendingGrace))
	}
	s.tracker.loaded = true
	if len(open) > 0 {
		s.logger.InfoContext(ctx, "resumed open sessions", "count", len(open))
	}
	return nil
}

func joinInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ", ")
}
