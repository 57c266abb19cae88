package bridge

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// This file holds every rule of the session lifecycle (DESIGN section 3) in one pure function,
// decide. It reads no clock, calls nobody and takes no lock: the executor (executor.go) gathers
// what it needs, asks it, and carries out the action it answers.

// triggerKind is what asks the lifecycle to act on a session.
type triggerKind int

const (
	// trigRead: a read of a session that may be past its TTL (GET, an agent's snapshot).
	trigRead triggerKind = iota
	// trigTTL: the sweep found the session's TTL (or a postponed expiry) due.
	trigTTL
	// trigAbandoned: the sweep found a session pending past pendingGrace: the process that
	// created it died mid-create (or could not record VCC's answer).
	trigAbandoned
	// trigFrameRefused: the widget saw the provider refuse the attempt's frame (trigger 1).
	trigFrameRefused
	// trigLifetime: an agent (re)connected, or is about to re-post tokens, and the attempt may be
	// older than the provider session lifetime (trigger 2).
	trigLifetime
	// trigProviderStatus: VCC (poll or webhook) reported on one attempt (trigger 3).
	trigProviderStatus
	// trigRestart: POST /v1/sessions/{id}/restart or the socket's session.restart (trigger 4).
	trigRestart
	// trigCancel: POST /v1/sessions/{id}/cancel.
	trigCancel
)

var triggerNames = [...]string{"read", "ttl", "abandoned", "frame_refused", "lifetime", "provider_status", "restart", "cancel"}

func (k triggerKind) String() string { return triggerNames[k] }

// trigger is one request to the lifecycle.
type trigger struct {
	kind    triggerKind
	attempt int             // the attempt a browser report is about; 0: whatever is current
	status  *ProviderStatus // trigProviderStatus: VCC's view of one attempt
	// fromBrowser marks a trigger an agent's socket sent (a refused frame, session.restart):
	// those are rationed to one restart per session per browserRestartEvery.
	fromBrowser bool
	// lockWait bounds the wait for the session's lock (0: as long as ctx allows); past it the
	// session is answered as stored. For snapshots, which must not hang on a slow restart.
	lockWait time.Duration
}

// rules are the lifecycle's settings.
type rules struct {
	maxAttempts  int           // provider sessions per payment session
	lifetime     time.Duration // how long a provider session lives
	expiryGrace  time.Duration // how long past its TTL a session may stay open while money may move
	retention    time.Duration // how long VCC keeps a provider session's result
	pollInterval time.Duration // how long a postponed expiry waits before it is looked at again
	// browserRestartEvery is how young an attempt may be before a browser trigger may restart it.
	browserRestartEvery time.Duration
	// profile reads the session's result data: its merchant's gateway profile for its account
	// configuration.
	profile *GatewayProfile
}

// providerView is what VCC said about some attempts of one session, by VCC session GUID. A GUID
// VCC no longer knows (purged) is there as ended without a result.
type providerView struct {
	status map[string]*ProviderStatus
	err    error // VCC could not answer about one of the attempts asked: nobody knows if money moved
}

func (v *providerView) of(guid string) *ProviderStatus {
	if v == nil {
		return nil
	}
	return v.status[guid]
}

// missing returns the GUIDs the view has nothing about, unless asking already failed.
func (v *providerView) missing(guids []string) []string {
	if v != nil && v.err != nil {
		return nil
	}
	var out []string
	for _, g := range guids {
		if v.of(g) == nil {
			out = append(out, g)
		}
	}
	return out
}

// actionKind is what the executor does.
type actionKind int

const (
	actIgnore   actionKind = iota // nothing to do (a stale report, an open session within its TTL)
	actRefuse                     // answer err, change nothing
	actAsk                        // ask VCC about the attempts in ask, then decide again
	actRecord                     // note what VCC said about an attempt; no transition
	actSettle                     // finish with the payment result VCC holds
	actRestart                    // end the current attempt and start a new one
	actExpire                     // finish as expired
	actPostpone                   // keep the session open past its TTL until `until`
	actFail                       // finish as failed without a payment result
	actCancel                     // finish as cancelled
)

var actionNames = [...]string{"ignore", "refuse", "ask", "record", "settle", "restart", "expire", "postpone", "fail", "cancel"}

func (k actionKind) String() string { return actionNames[k] }

// action is decide's answer.
type action struct {
	kind actionKind
	ask  []string // actAsk: the VCC session GUIDs to ask about, current attempt first
	// finish is the terminal transition of actSettle, actExpire, actFail and actCancel.
	finish finish
	// restart: why the current attempt ends, and whether VCC said its provider session is over.
	reason        EndReason
	providerEnded bool
	// record: the attempt VCC reported on, its provider session GUID and whether it is over;
	// after it the session's watch for late payments is recomputed.
	record *ProviderStatus
	ended  bool
	until  time.Time // actPostpone
	// err is the caller's answer: with actRefuse the whole answer; after a transition what the
	// caller hears about it (a cancel that lost to a payment, restarts exhausted).
	err error
	// note is logged by the executor, for operators and reconciliation.
	note *note
}

// note is a log line decide asks for.
type note struct {
	level slog.Level
	msg   string
	attrs []any
}

// finish is one terminal transition.
type finish struct {
	to      Status
	result  *Result
	failure *Failure
	// settled is the attempt whose result this is: it is marked over and its provider session
	// GUID kept. The transition is dropped if the attempt is gone (another node's change).
	settled *ProviderStatus
	quiet   bool // for the record only: no agent event, no merchant webhook
	late    bool // a payment after the session closed: the one change a final status allows
}

// decide applies DESIGN section 3's rules to sess for trigger t, given what VCC said (view, nil
// if nobody asked yet) at now. When it needs VCC's word it answers actAsk; the executor asks and
// calls it again with the view.
func decide(sess *Session, view *providerView, t trigger, now time.Time, r rules) action {
	// A report asked before the lock was taken may be stale by the time a session past its TTL
	// is settled: settling (postpone while keying, or expire) asks VCC afresh.
	if t.kind == trigProviderStatus && t.status != nil && !pastTTL(sess, now) {
		view = withStatus(view, t.status)
	}
	if sess.Status == StatusActive {
		var purged bool
		if purged = purgedUnseen(sess, view, now, r); purged && paymentIn(sess, view, r) == nil {
			return action{kind: actFail, finish: finish{to: StatusFailed, failure: purgedFailure(sess)},
				note: &note{slog.LevelError, "VCC purged the current attempt before paybridge learned its end: reconcile with the back office", []any{"session", sess.ID, "vccSession", sess.Current().SessionGUID}}}
		}
	}
	switch {
	case sess.Status.Terminal():
		return onTerminal(sess, view, t, now, r)
	case pastTTL(sess, now):
		return onPastTTL(sess, view, t, now, r)
	}
	switch t.kind {
	case trigAbandoned:
		if sess.Status == StatusPending {
			return action{kind: actFail, finish: finish{to: StatusFailed, failure: abandonedCreate(sess)}}
		}
	case trigCancel:
		return onCancel(sess, view, r, now)
	case trigRestart, trigFrameRefused, trigLifetime:
		return onRestart(sess, view, t, now, r)
	case trigProviderStatus:
		return onProviderStatus(sess, t.status, view, t, now, r)
	}
	return action{kind: actIgnore}
}

// abandonedCreate is the failure of a create cut off while VCC was asked: VCC may have started a
// payment session paybridge never recorded (a page the call was transferred to, a link texted to
// the customer), and nobody here can ask VCC about it without its GUID. So paybridge cannot tell
// whether money may move: it says so, and the session is never restarted.
func abandonedCreate(sess *Session) *Failure {
	ref := ""
	if sess.Reference != "" {
		ref = " (reference " + sess.Reference + ")"
	}
	return &Failure{Code: CodeTransactionVerificationFailed, Error: "paybridge stopped while VCC was starting this session: " +
		"VCC may have opened a payment page, or texted a payment link, that paybridge could not record. " +
		"Check the payment provider's records for this payment" + ref + " before taking it again."}
}

// purgedUnseen reports whether VCC answered 404 (purged) about the current attempt of active
// sess and that attempt is at least VCC's retention old. VCC purges a session, result and all,
// retention after it ends: paybridge did not see it end (it was away), and a payment on it may
// have been purged with it; nobody can tell any more, so the session must fail unverified, never
// be restarted. VCC not knowing a younger attempt means it never held a result for it (it cannot
// have been purged yet): that attempt simply ended, as before.
func purgedUnseen(sess *Session, view *providerView, now time.Time, r rules) bool {
	cur := sess.Current()
	st := view.of(cur.SessionGUID)
	return st != nil && st.Purged && !now.Before(cur.StartedAt.Add(r.retention))
}

// purgedFailure is the failure of a session whose current attempt VCC purged before paybridge
// learned how it ended.
func purgedFailure(sess *Session) *Failure {
	return &Failure{Code: CodeTransactionVerificationFailed, Error: "VCC no longer holds this session's payment page (VCC session " +
		sess.Current().SessionGUID + "): it ended more than 15 minutes ago, before paybridge could learn whether the customer paid. " +
		"Check the payment provider's records for this payment before taking it again."}
}

// pastTTL reports whether sess is open past its TTL: it must be settled before anything else.
func pastTTL(sess *Session, now time.Time) bool {
	return !sess.Status.Terminal() && !now.Before(sess.ExpiresAt)
}

// onTerminal: terminal statuses never change, and operations on them are refused, with one
// exception that money forces. VCC cannot end a provider session, so after a session closes its
// attempts are still asked about while VCC keeps their results (WatchUntil): a verified approval
// then makes the session succeeded, late; anything else that may be a payment is logged for
// reconciliation.
func onTerminal(sess *Session, view *providerView, t trigger, now time.Time, r rules) action {
	switch t.kind {
	case trigRestart:
		return action{kind: actRefuse, err: closedError(sess, "a restart")}
	case trigCancel:
		return action{kind: actRefuse, err: closedError(sess, "cancelling")}
	case trigTTL:
		if !sess.WatchUntil.IsZero() && !now.Before(sess.WatchUntil) {
			return onWatchEnd(sess, view, r)
		}
	case trigProviderStatus:
		return onLateStatus(sess, t.status, r)
	}
	return action{kind: actIgnore}
}

// onWatchEnd ends the watch of closed sess: polls of replaced attempts are spaced out, so VCC is
// asked once more about every attempt the watch was for (VCC keeps a result 15 minutes after the
// payment, which came after the attempt ended here); a payment found then settles the session.
func onWatchEnd(sess *Session, view *providerView, r rules) action {
	var watched []string
	for _, a := range sess.Attempts {
		if !a.ProviderEnded && !a.EndedAt.IsZero() {
			watched = append(watched, a.SessionGUID)
		}
	}
	if ask := view.missing(watched); len(ask) > 0 {
		return action{kind: actAsk, ask: ask}
	}
	end := action{kind: actRecord}
	for _, guid := range watched {
		if st := view.of(guid); st != nil {
			switch a := onLateStatus(sess, st, r); {
			case a.kind == actSettle:
				return a
			case a.note != nil && end.note == nil:
				end.note = a.note
			}
		}
	}
	if view != nil && view.err != nil && end.note == nil {
		end.note = &note{slog.LevelError, "late-payment watch ended with VCC unable to answer: reconcile with VCC", []any{"session", sess.ID, "err", view.err}}
	}
	return end
}

// onLateStatus acts on VCC's view of an attempt of a closed session.
func onLateStatus(sess *Session, st *ProviderStatus, r rules) action {
	a := sess.AttemptByGUID(st.SessionGUID)
	if a == nil || a.ProviderEnded {
		return action{kind: actIgnore}
	}
	o := r.profile.Read(st.Result)
	reconcile := func(msg string) action {
		return action{kind: actRecord, record: st, ended: true, note: &note{slog.LevelError, msg,
			[]any{"session", sess.ID, "status", sess.Status, "vccSession", st.SessionGUID, "decision", o.Decision(), "transactionId", o.TransactionID}}}
	}
	switch {
	case o.Kind == OutcomeApproved && sess.Status == StatusSucceeded:
		return reconcile("a second payment on a session that already succeeded: reconcile with VCC and refund one")
	case o.Kind == OutcomeApproved && r.profile.Matches(o, sess.Amount, sess.Currency):
		return action{kind: actSettle, finish: finish{to: StatusSucceeded, late: true, settled: st,
			result: &Result{Decision: o.Decision(), GatewayStatus: o.GatewayStatus, ReasonCode: o.ReasonCode, TransactionID: o.TransactionID, Late: true}},
			note: &note{slog.LevelWarn, "late payment: the customer paid after the session closed", []any{"session", sess.ID, "was", sess.Status, "attempt", a.Number}}}
	case mayBePayment(o):
		return reconcile("payment result on a session that is no longer open: reconcile with VCC")
	case st.Ended():
		return action{kind: actRecord, record: st, ended: true}
	}
	return action{kind: actIgnore}
}

// watchUntil is until when VCC must still be asked about closed sess's attempts: the latest end
// of an attempt VCC has not reported over, plus VCC's retention. Zero when that has passed at
// now, or sess is open (then every attempt is asked about anyway).
func watchUntil(sess *Session, retention time.Duration, now time.Time) time.Time {
	var until time.Time
	if !sess.Status.Terminal() {
		return until
	}
	for _, a := range sess.Attempts {
		if end := askableUntil(sess, a, retention); !a.ProviderEnded && !a.EndedAt.IsZero() && end.After(until) && end.After(now) {
			until = end
		}
	}
	return until
}

// askableUntil is until when VCC may still report a payment on attempt a of sess, which ended
// here: VCC keeps a result retention after the payment, and the payment may come as long as the
// customer can still pay on the provider session. An agent-assist page is taken as ending when
// it ended here (its PCI Pal session lives minutes); a digital session's link, texted to the
// customer, stays payable DigitalLinkLifetime after it was made.
func askableUntil(sess *Session, a Attempt, retention time.Duration) time.Time {
	payable := a.EndedAt
	if sess.Channel == ChannelDigital {
		payable = later(payable, a.StartedAt.Add(DigitalLinkLifetime))
	}
	return payable.Add(retention)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// onPastTTL settles an open session past its TTL, unless money may be moving: a payment result
// on any attempt that could carry one settles it instead; while the customer is keying, or VCC
// cannot answer, the session stays open for up to expiryGrace past its TTL.
func onPastTTL(sess *Session, view *providerView, t trigger, now time.Time, r rules) action {
	if sess.Status != StatusActive || sess.Current() == nil {
		return afterExpiry(sess, t, action{kind: actExpire, finish: finish{to: StatusExpired}})
	}
	if ask := view.missing(openGUIDs(sess, now, r)); len(ask) > 0 {
		return action{kind: actAsk, ask: ask}
	}
	if st := paymentIn(sess, view, r); st != nil {
		return afterSettle(settle(sess, st, r), t)
	}
	// VCC's word about the current attempt (asked first) stands even if a later question failed.
	keying := keyingOn(sess, view)
	if now.Before(sess.ExpiresAt.Add(r.expiryGrace)) && (view.err != nil || keying) {
		switch t.kind {
		case trigCancel:
			return cancelWhileUnsure(sess, view, keying)
		case trigRestart:
			return action{kind: actPostpone, until: now.Add(r.pollInterval), err: ttlError(sess),
				note: postponeNote(sess, view)}
		}
		return action{kind: actPostpone, until: now.Add(r.pollInterval), note: postponeNote(sess, view)}
	}
	a := action{kind: actExpire, finish: finish{to: StatusExpired}}
	if view.err != nil {
		a.note = &note{slog.LevelError, "expiring a session VCC could not report on: reconcile with VCC", []any{"session", sess.ID, "err", view.err}}
	}
	return afterExpiry(sess, t, a)
}

func postponeNote(sess *Session, view *providerView) *note {
	return &note{slog.LevelInfo, "expiry postponed: the customer may be paying", []any{"session", sess.ID, "keying", view.err == nil, "err", view.err}}
}

// afterExpiry adds what the caller of t hears when its session expires under it.
func afterExpiry(sess *Session, t trigger, a action) action {
	if t.kind == trigRestart || t.kind == trigCancel {
		a.err = closedError(&Session{ID: sess.ID, Status: StatusExpired, ExpiresAt: sess.ExpiresAt}, "")
	}
	return a
}

// onCancel: a payment VCC already holds wins over a cancel; the customer keying refuses it; VCC
// unable to answer does not stop it (the merchant asked; a later payment is for reconciliation).
func onCancel(sess *Session, view *providerView, r rules, now time.Time) action {
	if sess.Status == StatusPending {
		return action{kind: actCancel, finish: finish{to: StatusCancelled}}
	}
	if ask := view.missing(openGUIDs(sess, now, r)); len(ask) > 0 {
		return action{kind: actAsk, ask: ask}
	}
	if st := paymentIn(sess, view, r); st != nil {
		return afterSettle(settle(sess, st, r), trigger{kind: trigCancel})
	}
	return cancelWhileUnsure(sess, view, keyingOn(sess, view))
}

func cancelWhileUnsure(sess *Session, view *providerView, keying bool) action {
	if keying {
		return action{kind: actRefuse, err: keyingError("cancelled")}
	}
	a := action{kind: actCancel, finish: finish{to: StatusCancelled}}
	if view.err != nil {
		a.note = &note{slog.LevelWarn, "vcc status before cancel", []any{"session", sess.ID, "err", view.err}}
	}
	return a
}

// onRestart applies the restart rules to triggers 1, 2 and 4 (and 3, from onProviderStatus):
// reports about an older attempt are ignored; never while the customer is keying; a result VCC
// holds settles the session instead; at most maxAttempts attempts.
func onRestart(sess *Session, view *providerView, t trigger, now time.Time, r rules) action {
	cur := sess.Current()
	if t.attempt != 0 && (cur == nil || cur.Number != t.attempt) {
		return action{kind: actIgnore} // a report about an older attempt
	}
	if sess.Status != StatusActive || cur == nil {
		if t.kind == trigRestart {
			return action{kind: actRefuse, err: WrongState(sess.Status, "a restart")}
		}
		return action{kind: actIgnore}
	}
	if t.kind == trigLifetime && now.Before(cur.StartedAt.Add(r.lifetime)) {
		return action{kind: actIgnore} // the provider session is young enough to show
	}
	if t.fromBrowser && r.browserRestartEvery > 0 && now.Before(cur.StartedAt.Add(r.browserRestartEvery)) {
		// One socket must not burn a session's attempts in milliseconds.
		if t.kind == trigRestart {
			return action{kind: actRefuse, err: Errorf(CodeRateLimitExceeded, "The payment page was restarted less than %s ago; wait before restarting it again.", r.browserRestartEvery).
				WithFix("Wait a few seconds: a new payment page is already on its way.")}
		}
		return action{kind: actIgnore}
	}
	if ask := view.missing([]string{cur.SessionGUID}); len(ask) > 0 {
		return action{kind: actAsk, ask: ask}
	}
	if view.err != nil {
		return action{kind: actRefuse, err: view.err}
	}
	switch p := paymentIn(sess, view, r); {
	case keyingOn(sess, view):
		return action{kind: actRefuse, err: keyingError("restarted")}
	case p != nil:
		return afterSettle(settle(sess, p, r), t)
	case len(sess.Attempts) >= r.maxAttempts:
		msg := fmt.Sprintf("The payment page could not be shown after %d attempts (ATTESTATION_EXPIRED): the provider session kept ending before the agent's browser loaded it.", len(sess.Attempts))
		return action{kind: actFail, finish: finish{to: StatusFailed, failure: &Failure{Code: CodeProviderAttestationFailed, Error: msg}},
			err:  Errorf(CodeProviderAttestationFailed, "%s", msg),
			note: &note{slog.LevelWarn, "restarts exhausted", []any{"session", sess.ID, "attempts", len(sess.Attempts)}}}
	}
	return action{kind: actRestart, reason: endReasons[t.kind], providerEnded: view.of(cur.SessionGUID).Ended()}
}

// endReasons says why an attempt ends, by the trigger that ends it.
var endReasons = map[triggerKind]EndReason{
	trigFrameRefused:   EndFrameRefused,
	trigLifetime:       EndLifetimeElapsed,
	trigProviderStatus: EndProviderExpired,
	trigRestart:        EndRestartRequested,
}

// onProviderStatus acts on VCC's view of one attempt within the session's TTL: a result settles
// the session (on a replaced attempt only an ACCEPT does: money moved there); the current attempt
// ending without a payment restarts it; a replaced attempt ending is remembered.
func onProviderStatus(sess *Session, st *ProviderStatus, view *providerView, t trigger, now time.Time, r rules) action {
	a := sess.AttemptByGUID(st.SessionGUID)
	if sess.Status != StatusActive || a == nil {
		return action{kind: actIgnore}
	}
	current := a.Number == len(sess.Attempts)
	switch p := paymentIn(sess, view, r); {
	case p != nil:
		return settle(sess, p, r)
	case !current && st.Ended():
		return action{kind: actRecord, record: st, ended: true}
	case st.Ended():
		return onRestart(sess, view, trigger{kind: trigProviderStatus, attempt: a.Number}, now, r)
	case st.ProviderSessionGUID != "" && a.ProviderSessionGUID != st.ProviderSessionGUID:
		return action{kind: actRecord, record: st}
	}
	return action{kind: actIgnore}
}

// settle turns result data VCC holds into succeeded or failed, read through the merchant's
// gateway profile: approved and verified against the session's amount and currency succeeds;
// declined or error fails with provider_charge_failed; data the profile cannot read, or an
// approval that does not match, fails with transaction_verification_failed and tells the agent
// not to take the payment again (it may have been taken). On an attempt paybridge replaced only a
// result that may be a payment settles the session: the money decides.
func settle(sess *Session, st *ProviderStatus, r rules) action {
	a := sess.AttemptByGUID(st.SessionGUID)
	current := a != nil && a.Number == len(sess.Attempts)
	o := r.profile.Read(st.Result)
	if a == nil || o.Kind == OutcomeNone || (!current && !mayBePayment(o)) {
		return action{kind: actIgnore}
	}
	f := finish{result: &Result{Decision: o.Decision(), GatewayStatus: o.GatewayStatus, ReasonCode: o.ReasonCode, TransactionID: o.TransactionID}, settled: st}
	act := action{kind: actSettle}
	switch {
	case o.Kind == OutcomeDeclined || o.Kind == OutcomeError:
		msg := fmt.Sprintf("The provider did not take the payment (decision %s", o.Decision())
		if o.GatewayStatus != "" && !strings.EqualFold(o.GatewayStatus, o.Decision()) {
			msg += fmt.Sprintf(", %s %s", r.profile.StatusKey, o.GatewayStatus)
		}
		if o.ReasonCode != "" {
			msg += ", reason code " + o.ReasonCode
		}
		f.to, f.failure = StatusFailed, &Failure{Code: CodeProviderChargeFailed, Error: msg + ")."}
	case o.Kind == OutcomeUnreadable:
		f.result.Data = SanitizeResultData(st.Result)
		f.to, f.failure = StatusFailed, &Failure{Code: CodeTransactionVerificationFailed,
			Error: fmt.Sprintf("VCC reported a payment result that the %q gateway profile cannot read, so the payment may have been taken. "+
				"Do not take it again: check it with the back office (VCC session %s); the result's keys are kept on the session.", r.profile.Name, st.SessionGUID)}
		act.note = &note{slog.LevelError, "unreadable payment result: reconcile with VCC", []any{"session", sess.ID, "vccSession", st.SessionGUID, "profile", r.profile.Name, "keys", sortedKeys(f.result.Data)}}
	case !r.profile.Matches(o, sess.Amount, sess.Currency):
		f.to, f.failure = StatusFailed, &Failure{Code: CodeTransactionVerificationFailed,
			Error: fmt.Sprintf("VCC reported %s %s for a session of %d %s; the payment was not marked as succeeded. "+
				"Do not take it again: check it with the back office (VCC session %s).",
				amountText(o), orUnknown(o.Currency), sess.Amount, sess.Currency, st.SessionGUID)}
		act.note = &note{slog.LevelError, "transaction verification failed", []any{"session", sess.ID, "vccSession", st.SessionGUID}}
	default:
		f.to = StatusSucceeded
		if !current {
			act.note = &note{slog.LevelWarn, "payment accepted on a replaced attempt", []any{"session", sess.ID, "attempt", a.Number}}
		}
	}
	act.finish = f
	return act
}

// mayBePayment reports whether an outcome may mean money moved: approved, or unreadable.
func mayBePayment(o Outcome) bool { return o.Kind == OutcomeApproved || o.Kind == OutcomeUnreadable }

// afterSettle adds what the caller of t hears when a result VCC holds ends the session under
// it: a restart or cancel is answered with the outcome, since it did not happen.
func afterSettle(a action, t trigger) action {
	if a.kind != actSettle {
		return a
	}
	f := a.finish
	switch t.kind {
	case trigCancel:
		a.err = WrongState(f.to, "cancelling")
	case trigRestart:
		if f.to == StatusSucceeded {
			a.err = WrongState(f.to, "a restart").WithFix("The customer has paid: VCC reported the payment before the restart. Nothing needs restarting.")
		} else {
			a.err = &Error{Code: f.failure.Code, Message: f.failure.Error}
		}
	}
	return a
}

func amountText(o Outcome) string {
	if !o.AmountRead {
		return "(none)"
	}
	return fmt.Sprint(o.Amount)
}

func orUnknown(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// keyingOn reports whether VCC says the customer is keying on the current attempt right now.
func keyingOn(sess *Session, view *providerView) bool {
	st := view.of(sess.Current().SessionGUID)
	return st != nil && st.CaptureInProgress()
}

// paymentIn returns the result that decides the session: one that may be a payment (approved,
// or unreadable) on any attempt asked about, else a decline or error of the current attempt when
// VCC answered about every attempt asked. Any result data at all keeps an attempt from being
// restarted.
func paymentIn(sess *Session, view *providerView, r rules) *ProviderStatus {
	for _, guid := range guidsOf(sess.Attempts) {
		if st := view.of(guid); st != nil && st.HasResult() && mayBePayment(r.profile.Read(st.Result)) {
			return st
		}
	}
	if st := view.of(sess.Current().SessionGUID); view.err == nil && st != nil && st.HasResult() {
		return st
	}
	return nil
}

// openGUIDs returns the current attempt's GUID and those of the attempts it replaced on which a
// payment could still arrive (see unsettled).
func openGUIDs(sess *Session, now time.Time, r rules) []string {
	return append([]string{sess.Current().SessionGUID}, guidsOf(unsettled(sess, now, r.retention))...)
}

// unsettled returns the attempts that ended here on which a payment could still arrive: ended by
// paybridge (not by VCC saying so), and recent enough for VCC to still know them. For an open
// session those are the attempts it replaced; for a closed one, every attempt it had.
func unsettled(sess *Session, now time.Time, retention time.Duration) []Attempt {
	var out []Attempt
	for _, a := range sess.Attempts {
		if !a.ProviderEnded && !a.EndedAt.IsZero() && now.Before(askableUntil(sess, a, retention)) {
			out = append(out, a)
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func guidsOf(attempts []Attempt) []string {
	out := make([]string, len(attempts))
	for i, a := range attempts {
		out[i] = a.SessionGUID
	}
	return out
}

func withStatus(view *providerView, st *ProviderStatus) *providerView {
	v := &providerView{status: map[string]*ProviderStatus{st.SessionGUID: st}}
	if view != nil {
		v.err = view.err
		for g, s := range view.status {
			v.status[g] = s
		}
	}
	return v
}

// closedError answers an operation on a terminal session: 410 if it expired, 409 otherwise.
func closedError(sess *Session, operation string) error {
	if sess.Status == StatusExpired {
		return Errorf(CodeSessionExpired, "Session %s expired at %s.", sess.ID, sess.ExpiresAt.Format(time.RFC3339))
	}
	return WrongState(sess.Status, operation)
}

func ttlError(sess *Session) error {
	return Errorf(CodeSessionExpired, "Session %s reached its TTL at %s; it is not restarted.", sess.ID, sess.ExpiresAt.Format("15:04:05Z07:00"))
}

func keyingError(what string) *Error {
	return Errorf(CodeSessionWrongState, "The customer is keying card details right now; the session cannot be %s until they finish.", what).
		WithFix("Wait for the payment to finish; paybridge reports the outcome by itself.")
}
