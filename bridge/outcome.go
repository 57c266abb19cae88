package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// poll asks VCC about the current attempt of session id, and now and then about the attempts it
// replaced, and acts on what it hears.
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
	if err := s.checkAttempt(ctx, id, sess.Current().SessionGUID); err != nil {
		return err
	}
	if len(s.unsettled(sess)) > 0 && s.tracker.olderDue(id, s.clock.Now(), olderAttemptsEvery) {
		for _, a := range s.unsettled(sess) {
			if err := s.checkAttempt(ctx, id, a.SessionGUID); err != nil {
				return err
			}
		}
	}
	return nil
}

// status asks VCC about one provider session. A session VCC no longer knows (purged after its
// retention) is reported as expired without a result.
func (s *Service) status(ctx context.Context, m *Merchant, guid string) (*ProviderStatus, error) {
	st, err := s.provider.SessionStatus(ctx, m, guid)
	s.stats.polls.Add(1)
	switch {
	case errors.Is(err, ErrNotFound):
		return &ProviderStatus{SessionGUID: guid, State: StateExpired}, nil
	case err != nil:
		s.stats.pollErrors.Add(1)
		return nil, err
	}
	return st, nil
}

// checkAttempt fetches VCC's view of the attempt with guid of session id and applies it.
func (s *Service) checkAttempt(ctx context.Context, id, guid string) error {
	sess, err := s.store.Session(ctx, id)
	if err != nil || sess.Status != StatusActive || sess.AttemptByGUID(guid) == nil {
		return err
	}
	m, err := s.merchant(ctx, sess.MerchantID)
	if err != nil {
		return err
	}
	st, err := s.status(ctx, m, guid)
	if err != nil {
		return err
	}
	return s.applyStatus(ctx, id, st)
}

// applyStatus acts on VCC's view of one provider session of session id: a result settles the
// session (on a replaced attempt only an ACCEPT does: money moved there), the current attempt
// ending without a payment restarts it, a replaced attempt ending is remembered.
func (s *Service) applyStatus(ctx context.Context, id string, st *ProviderStatus) error {
	sess, err := s.store.Session(ctx, id)
	if err != nil {
		return err
	}
	a := sess.AttemptByGUID(st.SessionGUID)
	if a == nil {
		return nil
	}
	current := a.Number == len(sess.Attempts)
	switch {
	case st.Completed() && (current || st.Decision == DecisionAccept):
		unlock, err := s.locks.lock(ctx, id)
		if err != nil {
			return err
		}
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
	case !current && (st.Completed() || st.EndedWithoutPayment()):
		return s.settleAttempt(ctx, id, st.SessionGUID)
	case st.EndedWithoutPayment():
		_, err = s.restart(ctx, id, restartRequest{attempt: a.Number, reason: EndProviderExpired, status: st})
		if errors.Is(err, errStaleAttempt) {
			return nil
		}
		return err
	case st.ProviderSessionGUID != "" && a.ProviderSessionGUID != st.ProviderSessionGUID:
		_, err = s.store.UpdateSession(ctx, id, func(x *Session, _ *Outbox) error {
			if xa := x.AttemptByGUID(st.SessionGUID); xa != nil {
				xa.ProviderSessionGUID = st.ProviderSessionGUID // kept for reconciliation
			}
			return nil
		})
		return err
	}
	return nil
}

// unsettled returns the attempts sess replaced on which a payment could still arrive: ended by
// paybridge (not by VCC saying so), and recent enough for VCC to still know them.
func (s *Service) unsettled(sess *Session) []Attempt {
	now := s.clock.Now()
	var out []Attempt
	for _, a := range sess.Attempts[:max(len(sess.Attempts)-1, 0)] {
		if !a.ProviderEnded && !a.EndedAt.IsZero() && now.Sub(a.EndedAt) < vccRetention {
			out = append(out, a)
		}
	}
	return out
}

// settleAttempt records that VCC reports a replaced attempt over: it is not asked about again.
func (s *Service) settleAttempt(ctx context.Context, id, guid string) error {
	_, err := s.store.UpdateSession(ctx, id, func(x *Session, _ *Outbox) error {
		if a := x.AttemptByGUID(guid); a != nil {
			a.ProviderEnded = true
		}
		return nil
	})
	return err
}

// providerView is what VCC says about the attempts of one session that could carry a payment.
type providerView struct {
	completed *ProviderStatus // a result that decides the session: an ACCEPT on any attempt, else any result of the current one
	keying    bool            // the customer is keying on the current attempt
}

// providerView asks VCC about the current attempt and, with older, the unsettled ones it
// replaced. It fails if VCC cannot answer about one of them: then nobody knows whether money moved.
func (s *Service) providerView(ctx context.Context, sess *Session, m *Merchant, older bool) (*providerView, error) {
	v := &providerView{}
	attempts := []Attempt{*sess.Current()}
	if older {
		attempts = append(attempts, s.unsettled(sess)...)
	}
	for i, a := range attempts {
		st, err := s.status(ctx, m, a.SessionGUID)
		if err != nil {
			return nil, err
		}
		switch {
		case st.Completed() && st.Decision == DecisionAccept:
			v.completed = st
			return v, nil
		case i == 0 && st.Completed():
			v.completed = st
		case i == 0 && st.CaptureInProgress():
			v.keying = true
		}
	}
	return v, nil
}

// applyOutcomeLocked turns a completed VCC result into succeeded or failed, verifying amount and
// currency first. The result is the current attempt's, or an ACCEPT on an attempt paybridge
// replaced (the customer paid there: the money decides). A result for a session already over is
// not applied; an ACCEPT then is logged loudly, for someone to reconcile.
func (s *Service) applyOutcomeLocked(ctx context.Context, sess *Session, m *Merchant, st *ProviderStatus) (*Session, error) {
	a := sess.AttemptByGUID(st.SessionGUID)
	current := a != nil && a.Number == len(sess.Attempts)
	if a == nil || sess.Status.Terminal() || (!current && st.Decision != DecisionAccept) {
		if st.Decision == DecisionAccept {
			s.logger.ErrorContext(ctx, "payment accepted on a session that is no longer open: reconcile with VCC",
				"session", sess.ID, "status", sess.Status, "vccSession", st.SessionGUID, "transactionId", st.TransactionID)
		}
		return sess, nil
	}
	result := &Result{Decision: st.Decision, ReasonCode: st.ReasonCode, TransactionID: st.TransactionID}
	guard := func(x *Session) error {
		xa := x.AttemptByGUID(st.SessionGUID)
		if xa == nil {
			return errStaleAttempt
		}
		if st.ProviderSessionGUID != "" {
			xa.ProviderSessionGUID = st.ProviderSessionGUID
		}
		xa.ProviderEnded = true
		return nil
	}
	f := finish{result: result, guard: guard}
	switch {
	case st.Decision != DecisionAccept:
		msg := fmt.Sprintf("The provider did not take the payment (decision %s", st.Decision)
		if st.ReasonCode != "" {
			msg += ", reason code " + st.ReasonCode
		}
		f.to, f.failure = StatusFailed, &Failure{Code: CodeProviderChargeFailed, Error: msg + ")."}
	case !s.verified(sess, st):
		msg := fmt.Sprintf("VCC reported %s %s for a session of %d %s; the payment was not marked as succeeded.",
			orUnknown(st.Amount), orUnknown(st.Currency), sess.Amount, sess.Currency)
		s.logger.ErrorContext(ctx, "transaction verification failed", "session", sess.ID, "vccSession", st.SessionGUID)
		f.to, f.failure = StatusFailed, &Failure{Code: CodeTransactionVerificationFailed, Error: msg}
	default:
		f.to = StatusSucceeded
		if !current {
			s.logger.WarnContext(ctx, "payment accepted on a replaced attempt", "session", sess.ID, "attempt", a.Number)
		}
	}
	done, err := s.finishLocked(ctx, sess, m, f)
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

// finish is one terminal transition.
type finish struct {
	to      Status
	result  *Result
	failure *Failure
	guard   func(*Session) error // runs first, inside the transaction
	quiet   bool                 // for the record only: no agent event, no merchant webhook
}

// finishLocked moves sess to a terminal status, with the merchant webhook in the same
// transaction, then tells the agent.
func (s *Service) finishLocked(ctx context.Context, sess *Session, m *Merchant, f finish) (*Session, error) {
	now := s.clock.Now().UTC()
	eventID := NewEventID()
	done, err := s.store.UpdateSession(ctx, sess.ID, func(x *Session, out *Outbox) error {
		if f.guard != nil {
			if err := f.guard(x); err != nil {
				return err
			}
		}
		if err := x.SetStatus(f.to, now); err != nil {
			return err
		}
		x.Result, x.Failure = f.result, f.failure
		if m.Webhook.URL != "" && !f.quiet {
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
		if status == f.to {
			s.stats.terminal[i].Add(1)
		}
	}
	data := SessionEventData{Session: done.View()}
	if f.failure != nil {
		data.Code, data.Error, data.Fix = f.failure.Code, f.failure.Error, Info(f.failure.Code).Fix
	}
	if !f.quiet {
		s.publish(done, TerminalEvent(f.to), eventID, data)
	}
	s.logger.InfoContext(ctx, "session "+string(f.to), "session", done.ID, "merchant", done.MerchantID, "code", data.Code)
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

// reload reads session id and, if its TTL has passed while it was open, settles it (see
// expireLocked). Call it with the session's lock held.
func (s *Service) reload(ctx context.Context, id string) (*Session, error) {
	sess, err := s.store.Session(ctx, id)
	if err != nil {
		return nil, s.notFound(err)
	}
	if sess.Status.Terminal() || s.clock.Now().Before(sess.ExpiresAt) {
		return sess, nil
	}
	return s.expireLocked(ctx, sess)
}

// expireLocked ends a session whose TTL has passed, unless money may be moving: VCC is asked
// first, and a payment result found on any attempt that could carry one settles the session
// instead. While the customer is still keying, or VCC cannot answer, the session stays open for
// up to expiryGrace past its TTL and is looked at again after a poll interval.
func (s *Service) expireLocked(ctx context.Context, sess *Session) (*Session, error) {
	m, err := s.merchant(ctx, sess.MerchantID)
	if err != nil {
		return nil, err
	}
	if sess.Status == StatusActive && sess.Current() != nil {
		now := s.clock.Now()
		view, err := s.providerView(ctx, sess, m, true)
		inGrace := now.Before(sess.ExpiresAt.Add(expiryGrace))
		switch {
		case err == nil && view.completed != nil:
			done, err := s.applyOutcomeLocked(ctx, sess, m, view.completed)
			if err != nil || done.Status.Terminal() {
				return done, err
			}
		case inGrace && (err != nil || view.keying):
			s.logger.InfoContext(ctx, "expiry postponed: the customer may be paying", "session", sess.ID, "keying", err == nil, "err", err)
			s.tracker.postpone(sess.ID, now.Add(s.pollInterval))
			return sess, nil
		case err != nil:
			s.logger.ErrorContext(ctx, "expiring a session VCC could not report on: reconcile with VCC", "session", sess.ID, "err", err)
		}
	}
	return s.finishLocked(ctx, sess, m, finish{to: StatusExpired})
}
