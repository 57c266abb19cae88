package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
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
	// DefaultBrowserRestartEvery rations restarts asked for from an agent's socket.
	DefaultBrowserRestartEvery = 5 * time.Second
	// DefaultReloadInterval is ServiceOptions.ReloadInterval's default.
	DefaultReloadInterval = 3 * time.Second
	// DefaultProviderDeadline bounds one trigger's wait for VCC's status answers.
	DefaultProviderDeadline = 10 * time.Second
	// pendingGrace is how long a session may stay pending (its VCC create in flight) before a
	// sweep decides the process that created it died mid-create.
	pendingGrace = 2 * time.Minute
	// backgroundTimeout bounds one session's background work (a poll and what it leads to), so
	// a slow VCC delays only that session, never the expiry of the others.
	backgroundTimeout = 20 * time.Second
	// refreshTimeout bounds the restarts a connecting agent waits for: past it, the agent gets
	// its snapshot as it is and a refused frame restarts the attempt later.
	refreshTimeout = 5 * time.Second
	// vccRetention is how long VCC keeps a provider session's result (UPSTREAM): how long an
	// attempt paybridge replaced is still asked about, in case the customer paid on it.
	vccRetention = 15 * time.Minute
	// snapshotLockWait is how long a connecting agent's snapshot waits for a session's create or
	// restart in flight.
	snapshotLockWait = 2 * time.Second
	// olderAttemptsEvery is how often the poller asks about replaced attempts.
	olderAttemptsEvery = 10 * time.Second
	// linkAttemptsEvery is how often the poller asks about digital links that ended here longer
	// than VCC's retention ago but are still payable (DigitalLinkLifetime).
	linkAttemptsEvery = time.Minute
	// expiryGrace is how long past its TTL a session stays open while the customer is keying or
	// VCC cannot say whether they paid; after it, the session expires regardless.
	expiryGrace = 5 * time.Minute
)

// ServiceOptions are the dependencies and settings of a Service.
type ServiceOptions struct {
	Store     Store
	Merchants MerchantDirectory
	Provider  PaymentProvider
	Publisher Publisher
	Keyring   *Keyring
	Locker    Locker       // nil: the Store if it is a Locker, else a LocalLocker
	Leaser    Leaser       // nil: the Store if it is a Leaser (several nodes), else a LocalLeaser
	Clock     Clock        // nil: SystemClock
	Logger    *slog.Logger // nil: discard

	ProviderLifetime time.Duration // how long a provider session lives (15m)
	MaxAttempts      int           // provider sessions per payment session (5)
	DefaultTTL       time.Duration // session TTL when the request gives none (30m)
	PollInterval     time.Duration // VCC status polling per active session (2s, jittered)
	PollConcurrency  int           // status polls in flight at once (8)
	SweepInterval    time.Duration // how often Run looks for due polls and expiries (PollInterval/8, at least 10ms)
	// BrowserRestartEvery rations restarts an agent's socket asks for (a refused frame,
	// session.restart): an attempt younger than this is not restarted from the browser (5s;
	// negative: no ration).
	BrowserRestartEvery time.Duration
	// ProviderDeadline bounds what one trigger waits for VCC's status answers, all attempts
	// together (10s), so a cancel never hangs on a slow VCC.
	ProviderDeadline time.Duration
	// LateWatch is how long after an attempt ends VCC is still asked about it: VCC's retention
	// of results (15m).
	LateWatch time.Duration
	// ReloadInterval is how often, on a store several nodes share (a Leaser), the open sessions
	// are read again, to learn those other nodes created and to take over a dead node's; it is
	// also how long a session another node owns is left before asking again (3s).
	ReloadInterval time.Duration
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

	rules           rules
	defaultTTL      time.Duration
	pollInterval    time.Duration
	pollConcurrency int
	sweepInterval   time.Duration
	askDeadline     time.Duration

	locks   Locker
	leaser  Leaser
	shared  bool          // the store is shared by several nodes: reload, claim before working
	reload  time.Duration // see ServiceOptions.ReloadInterval
	tracker tracker
	stats   serviceCounters
	work    chan struct{} // slots for background work in flight (pollConcurrency)
}

// serviceCounters count what the service did, for metrics.
type serviceCounters struct {
	created, restarts, polls, pollErrors, late atomic.Int64
	terminal                                   [4]atomic.Int64 // succeeded, failed, expired, cancelled
}

// ServiceStats are the service's counters since it started.
type ServiceStats struct {
	SessionsCreated int64            // sessions that reached VCC and became active
	Restarts        int64            // new attempts after the first
	Polls           int64            // VCC status requests made by the poller
	PollErrors      int64            // of which failed
	Terminal        map[Status]int64 // sessions that ended, by final status
	Late            int64            // payments VCC reported after the session closed (counted in Terminal too)
	OpenSessions    int              // pending and active sessions now
}

var terminalStatuses = [4]Status{StatusSucceeded, StatusFailed, StatusExpired, StatusCancelled}

// Stats returns the service's counters.
func (s *Service) Stats() ServiceStats {
	st := ServiceStats{
		SessionsCreated: s.stats.created.Load(), Restarts: s.stats.restarts.Load(),
		Polls: s.stats.polls.Load(), PollErrors: s.stats.pollErrors.Load(), Late: s.stats.late.Load(),
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
		publisher: opts.Publisher, keyring: opts.Keyring, locks: opts.Locker, clock: opts.Clock, logger: opts.Logger,
		defaultTTL: opts.DefaultTTL, pollInterval: opts.PollInterval, pollConcurrency: opts.PollConcurrency,
		sweepInterval: opts.SweepInterval,
	}
	if s.locks == nil {
		if l, ok := opts.Store.(Locker); ok {
			s.locks = l
		} else {
			s.locks = &LocalLocker{}
		}
	}
	s.leaser = opts.Leaser
	if s.leaser == nil {
		if l, ok := opts.Store.(Leaser); ok {
			s.leaser = l
		} else {
			s.leaser = LocalLeaser{}
		}
	}
	_, s.shared = s.leaser.(LocalLeaser)
	s.shared = !s.shared
	s.reload = orDefault(opts.ReloadInterval, DefaultReloadInterval)
	if s.clock == nil {
		s.clock = SystemClock{}
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.defaultTTL = orDefault(s.defaultTTL, DefaultSessionTTL)
	s.pollInterval = orDefault(s.pollInterval, DefaultPollInterval)
	s.sweepInterval = orDefault(s.sweepInterval, max(s.pollInterval/8, 10*time.Millisecond))
	s.rules = rules{
		maxAttempts: opts.MaxAttempts, lifetime: orDefault(opts.ProviderLifetime, DefaultProviderLifetime),
		expiryGrace: expiryGrace, retention: orDefault(opts.LateWatch, vccRetention), pollInterval: s.pollInterval,
		browserRestartEvery: opts.BrowserRestartEvery,
	}
	s.askDeadline = orDefault(opts.ProviderDeadline, DefaultProviderDeadline)
	if s.rules.browserRestartEvery == 0 {
		s.rules.browserRestartEvery = DefaultBrowserRestartEvery
	}
	if s.rules.maxAttempts <= 0 {
		s.rules.maxAttempts = DefaultMaxAttempts
	}
	if s.pollConcurrency <= 0 {
		s.pollConcurrency = DefaultPollConcurrency
	}
	s.tracker.items = make(map[string]*tracked)
	s.work = make(chan struct{}, s.pollConcurrency)
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// CreateSession validates in, starts the first provider session through VCC, pushes its handoff
// to the agent's sockets and returns the active session. A VCC failure answers with the mapped
// error and leaves the session failed, for audit only: the caller has the error, so no agent
// event and no merchant webhook report a session nobody saw.
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
	id := in.SessionID
	if id == "" {
		id = NewSessionID(in.Mode)
	} else if ModeOfSessionID(id) != in.Mode {
		return nil, fmt.Errorf("bridge: session id %q is not a %s session id", id, in.Mode)
	}
	sess := &Session{
		ID: id, MerchantID: m.ID, Mode: in.Mode, AgentID: in.AgentID,
		Channel: in.Channel, Amount: in.Amount, Currency: in.Currency, Country: in.Country,
		AccountConfigurationID: in.AccountConfigurationID, Reference: in.Reference,
		Customer: in.Customer, SealedCustomer: s.sealCustomer(id, in.Customer), LineItems: in.LineItems, Metadata: in.Metadata,
		SuccessURL: in.SuccessURL, CancelURL: in.CancelURL,
		Status: StatusPending, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(ttl),
	}
	// Locked before it exists anywhere: an agent connecting meanwhile finds it pending in the
	// tracker and waits on this lock for the handoff, rather than missing both.
	unlock, err := s.locks.LockSession(ctx, sess.ID) // new: nobody else can hold it yet
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := s.store.CreateSession(ctx, sess); errors.Is(err, ErrConflict) && in.SessionID != "" {
		// Another run of the same idempotent request made it first (a retry racing a process
		// that is not dead after all): that run owns the VCC call; answer what it made.
		return nil, ErrDuplicateCreate
	} else if err != nil {
		return nil, fmt.Errorf("store session: %w", err)
	}
	s.tracker.track(sess, now.Add(pendingGrace))

	ps, err := s.provider.CreateSession(ctx, m, s.providerRequest(sess, m))
	if err != nil {
		pub := AsError(err)
		// Not logged here: the caller (the HTTP request) logs the error, and finish logs the
		// session failed with its code, so a VCC timeout is one line.
		// A background context: the request may be cancelled already, the record must be written.
		if _, ferr := s.finish(context.WithoutCancel(ctx), sess, m, finish{to: StatusFailed,
			failure: &Failure{Code: pub.Code, Error: pub.Message}, quiet: true}); ferr != nil {
			s.logger.ErrorContext(ctx, "record failed session", "session", sess.ID, "err", ferr)
		}
		return nil, err
	}
	active := sess.Clone()
	active.Status = StatusActive
	active.UpdatedAt = s.clock.Now().UTC()
	active.Attempts = []Attempt{s.newAttempt(sess.ID, 1, ps, active.UpdatedAt)}
	// Recorded before the handoff leaves: no page an agent can pay on goes unrecorded.
	stored, err := s.store.UpdateSession(context.WithoutCancel(ctx), sess.ID, func(x *Session, _ *Outbox) error {
		if err := x.SetStatus(StatusActive, active.UpdatedAt); err != nil {
			return err
		}
		x.Attempts = active.Attempts
		return nil
	})
	if err != nil {
		// No handoff went out. The record stays pending and the sweep fails it once the store is
		// back.
		return nil, fmt.Errorf("activate session: %w", err)
	}
	s.publishHandoff(active, m)
	stored.Attempts[0].BearerToken, stored.Attempts[0].RefreshToken = ps.AgentAccessToken, ps.AgentRefreshToken
	s.tracker.track(stored, s.nextPoll(stored.UpdatedAt))
	s.stats.created.Add(1)
	s.logger.InfoContext(ctx, "session active", "session", stored.ID, "merchant", m.ID, "agent", stored.AgentID, "vccSession", ps.SessionGUID)
	return stored, nil
}

// ErrDuplicateCreate is CreateSession's answer when the session id it was given exists already:
// another run of the same idempotent request made the session.
var ErrDuplicateCreate = errors.New("bridge: a session with this id exists: made by another run of the same request")

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
	if in.AccountConfigurationID == nil {
		in.AccountConfigurationID = cloneInt(m.VCC.DefaultAccountConfigurationID)
	} else if !m.VCC.AllowsConfiguration(*in.AccountConfigurationID) {
		return nil, invalid("accountConfigurationId", "accountConfigurationId %d is not one this merchant allows (allowed: %s)",
			*in.AccountConfigurationID, joinInts(m.VCC.AccountConfigurationIDs)).
			WithFix("Use one of the account configuration IDs Vonage supplied and your operator listed in vcc.accountConfigurationIds, or omit the field to use the default.")
	}
	return m, nil
}

// SettledSession returns the session id within scope. One left open past its TTL is settled
// first, which asks VCC: it expires, or, if VCC has its payment, ends with that payment.
func (s *Service) SettledSession(ctx context.Context, sc AgentRef, id string) (*Session, error) {
	sess, err := s.scoped(ctx, sc, id)
	if err != nil || !pastTTL(sess, s.clock.Now()) {
		return sess, err
	}
	done, err := s.execute(ctx, id, trigger{kind: trigRead})
	return done.sess, err
}

// ListSessions returns the sessions f selects, newest first, as stored: a session past its TTL
// shows as open until the sweep (every fraction of a second) or a read settles it.
func (s *Service) ListSessions(ctx context.Context, f SessionFilter) ([]*Session, error) {
	list, err := s.store.ListSessions(ctx, f)
	if errors.Is(err, ErrNotFound) {
		return nil, invalid("starting_after", "starting_after %q is not a session of yours", f.StartingAfter)
	}
	return list, err
}

// CancelSession cancels an open session. If VCC already has a payment result for it (on any
// attempt that could have taken one), that result wins and the cancel answers
// session_wrong_state; while the customer is keying, the cancel is refused.
func (s *Service) CancelSession(ctx context.Context, sc AgentRef, id string) (*Session, error) {
	return s.operate(ctx, sc, id, trigger{kind: trigCancel})
}

// RestartSession starts a new provider session for an active session on request (DESIGN section
// 3, trigger 4). If VCC turns out to have the payment's result already, that result is applied
// and answered instead: session_wrong_state for a success, the failure's own code otherwise.
func (s *Service) RestartSession(ctx context.Context, sc AgentRef, id string) (*Session, error) {
	return s.operate(ctx, sc, id, trigger{kind: trigRestart})
}

// RestartFromAgent is RestartSession asked for by an agent's socket (session.restart): rationed
// to one restart per session per BrowserRestartEvery, so one socket cannot burn the attempts.
func (s *Service) RestartFromAgent(ctx context.Context, agent AgentRef, id string) (*Session, error) {
	return s.operate(ctx, agent, id, trigger{kind: trigRestart, fromBrowser: true})
}

// operate runs an operation a caller within sc asked for: an error, or the session after it.
func (s *Service) operate(ctx context.Context, sc AgentRef, id string, t trigger) (*Session, error) {
	if _, err := s.scoped(ctx, sc, id); err != nil {
		return nil, err
	}
	done, err := s.execute(ctx, id, t)
	if err != nil {
		return nil, err
	}
	return done.sess, nil
}

// FrameRefused handles the widget's report that the provider refused attempt's frame (trigger 1).
// A report about an older attempt is not a trigger, but it means that socket missed a handoff:
// the current one is returned, for that socket alone. A report about a session that is no longer
// active changes nothing.
func (s *Service) FrameRefused(ctx context.Context, agent AgentRef, sessionID string, attempt int) (*HandoffEventData, error) {
	if _, err := s.scoped(ctx, agent, sessionID); err != nil {
		return nil, err
	}
	if attempt <= 0 {
		return nil, invalid("attempt", "frame.refused needs the attempt number it is about")
	}
	done, err := s.execute(ctx, sessionID, trigger{kind: trigFrameRefused, attempt: attempt, fromBrowser: true})
	if err != nil || done.kind != actIgnore {
		return nil, err
	}
	sess := done.sess
	if sess.Status != StatusActive || sess.Current() == nil || sess.Current().Number <= attempt {
		return nil, nil
	}
	s.logger.DebugContext(ctx, "frame.refused for an older attempt", "session", sessionID, "attempt", attempt)
	return s.handoffData(ctx, sess)
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
	return s.checkAttempt(ctx, sess, sessionGUID)
}

// checkAttempt asks VCC about the attempt with guid of sess, if sess is still active, and runs
// what it says through the lifecycle (trigger 3).
func (s *Service) checkAttempt(ctx context.Context, sess *Session, guid string) error {
	if !sess.Open() || sess.AttemptByGUID(guid) == nil {
		return nil
	}
	m, err := s.merchant(ctx, sess.MerchantID)
	if err != nil {
		return err
	}
	st, err := s.status(ctx, m, guid)
	if err != nil {
		return err
	}
	_, err = s.execute(ctx, sess.ID, trigger{kind: trigProviderStatus, status: st})
	return err
}

// scoped returns session id if sc may see it, else session_not_found (never saying which).
func (s *Service) scoped(ctx context.Context, sc AgentRef, id string) (*Session, error) {
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
		Channel: sess.Channel, AgentID: sess.AgentID, AccountConfigurationID: cloneInt(sess.AccountConfigurationID),
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

// sealCustomer seals the customer's personal data for storage, bound to the session; nil when
// there is none.
func (s *Service) sealCustomer(sessionID string, c Customer) []byte {
	if c == (Customer{}) {
		return nil
	}
	plain, _ := json.Marshal(c)
	return s.keyring.Seal(plain, []byte(sessionID+"#customer"))
}

// openCustomer fills sess.Customer from its sealed form, for a new attempt's VCC request.
func (s *Service) openCustomer(sess *Session) error {
	if len(sess.SealedCustomer) == 0 || sess.Customer != (Customer{}) {
		return nil
	}
	plain, err := s.keyring.Open(sess.SealedCustomer, []byte(sess.ID+"#customer"))
	if err == nil {
		err = json.Unmarshal(plain, &sess.Customer)
	}
	if err != nil {
		return Errorf(CodeSessionIntegrityError, "The customer details of session %s could not be opened.", sess.ID).WithCause(err)
	}
	return nil
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

func joinInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ", ")
}
