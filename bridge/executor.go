package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// This file is the lifecycle's one executor: every trigger goes through execute, which locks the
// session, reads it, asks VCC once when decide needs it, and carries out decide's action (a new
// attempt, or a terminal transition stored with its merchant webhook), then publishes.

// executed is what execute did: the action taken and the session after it.
type executed struct {
	sess *Session
	kind actionKind
}

// execute runs trigger t on session id under the session's lock. The error is the caller's
// answer (decide's, or a failure to carry the action out); the session comes with it when the
// action was carried out (restarts exhausted answer the failed session and the error).
func (s *Service) execute(ctx context.Context, id string, t trigger) (executed, error) {
	lockCtx, cancel := ctx, context.CancelFunc(func() {})
	if t.lockWait > 0 {
		lockCtx, cancel = context.WithTimeout(ctx, t.lockWait)
	}
	unlock, err := s.locks.LockSession(lockCtx, id)
	cancel()
	if err != nil && t.lockWait > 0 && ctx.Err() == nil {
		// A create or restart in flight is taking long (VCC is slow): its handoff is not out yet
		// either and will reach the caller as an event. Answer the session as stored.
		sess, err := s.store.Session(ctx, id)
		return executed{sess: sess, kind: actIgnore}, s.notFound(err)
	}
	if err != nil {
		return executed{}, err
	}
	defer unlock()
	sess, err := s.store.Session(ctx, id)
	if err != nil {
		return executed{}, s.notFound(err)
	}
	m, err := s.merchant(ctx, sess.MerchantID)
	if err != nil {
		return executed{}, err
	}
	now, r := s.clock.Now(), s.rules
	r.profile = m.VCC.Profile(sess.AccountConfigurationID)
	act := decide(sess, nil, t, now, r)
	if act.kind == actAsk {
		view := &providerView{status: make(map[string]*ProviderStatus, len(act.ask))}
		askCtx, cancel := context.WithTimeout(ctx, s.askDeadline)
		defer cancel()
		for _, guid := range act.ask {
			st, err := s.status(askCtx, m, guid)
			if err != nil {
				view.err = err
				break
			}
			view.status[guid] = st
		}
		if act = decide(sess, view, t, now, r); act.kind == actAsk {
			return executed{}, fmt.Errorf("bridge: lifecycle asked VCC twice about session %s", id)
		}
	}
	if n := act.note; n != nil {
		s.logger.Log(ctx, n.level, n.msg, n.attrs...)
	}
	done, err := s.carryOut(ctx, sess, m, act)
	if err != nil {
		return executed{sess: done, kind: act.kind}, err
	}
	return executed{sess: done, kind: act.kind}, act.err
}

// carryOut does what act says to sess, whose lock is held.
func (s *Service) carryOut(ctx context.Context, sess *Session, m *Merchant, act action) (*Session, error) {
	switch act.kind {
	case actRefuse:
		return nil, act.err
	case actPostpone:
		s.tracker.postpone(sess.ID, act.until)
		return sess, nil
	case actRecord:
		now := s.clock.Now().UTC()
		done, err := s.store.UpdateSession(ctx, sess.ID, func(x *Session, _ *Outbox) error {
			if st := act.record; st != nil {
				if a := x.AttemptByGUID(st.SessionGUID); a != nil {
					if st.ProviderSessionGUID != "" {
						a.ProviderSessionGUID = st.ProviderSessionGUID // kept for reconciliation
					}
					a.ProviderEnded = a.ProviderEnded || act.ended // not asked about again
				}
			}
			x.WatchUntil = watchUntil(x, s.rules.retention, now)
			return nil
		})
		if err == nil && !done.Open() {
			s.tracker.untrack(sess.ID)
		}
		return done, err
	case actRestart:
		return s.startAttempt(ctx, sess, m, act)
	case actSettle, actExpire, actFail, actCancel:
		done, err := s.finish(ctx, sess, m, act.finish)
		if errors.Is(err, ErrConflict) && act.finish.settled != nil {
			return sess, nil // the attempt is gone: another node changed the session first
		}
		return done, err
	}
	return sess, nil
}

// startAttempt ends sess's current attempt and starts the next one through VCC: the agent hears
// session.restarting, then the new handoff.
func (s *Service) startAttempt(ctx context.Context, sess *Session, m *Merchant, act action) (*Session, error) {
	cur := sess.Current()
	withCustomer := sess.Clone()
	if err := s.openCustomer(withCustomer); err != nil {
		return nil, err
	}
	s.publish(sess, EventRestarting, "", SessionEventData{Session: sess.View(), Reason: string(act.reason)})
	ps, err := s.provider.CreateSession(ctx, m, s.providerRequest(withCustomer, m))
	if err != nil {
		pub := AsError(err)
		s.logger.WarnContext(ctx, "vcc create for restart failed", "session", sess.ID, "code", pub.Code, "err", err)
		s.publish(sess, EventError, "", SessionEventData{Session: sess.View(), Code: pub.Code, Error: pub.Message, Fix: pub.PublicFix()})
		return nil, err
	}
	now := s.clock.Now().UTC()
	next := sess.Clone()
	next.UpdatedAt = now
	ended := next.Current()
	ended.EndedAt, ended.EndReason = now, act.reason
	ended.ProviderEnded = act.providerEnded // VCC said so: no payment can come of it any more
	next.Attempts = append(next.Attempts, s.newAttempt(sess.ID, cur.Number+1, ps, now))
	// Recorded before the handoff leaves: no page an agent can pay on goes unrecorded.
	stored, err := s.store.UpdateSession(context.WithoutCancel(ctx), sess.ID, func(x *Session, _ *Outbox) error {
		if x.Status != StatusActive || len(x.Attempts) != len(sess.Attempts) {
			return ErrConflict // only possible if another node changed it; nothing to hand off
		}
		x.UpdatedAt, x.Attempts = now, next.Attempts
		return nil
	})
	if err != nil {
		// The new page is not on record, so it is not shown: the session keeps its old attempt
		// and the next refused frame or poll starts another.
		s.publish(sess, EventError, "", SessionEventData{Session: sess.View(), Code: CodeInternalError,
			Error: "paybridge could not record the new payment page.", Fix: Info(CodeInternalError).Fix})
		return nil, fmt.Errorf("record restart: %w", err)
	}
	s.publishHandoff(next, m)
	s.tracker.track(stored, s.nextPoll(now))
	s.stats.restarts.Add(1)
	s.logger.InfoContext(ctx, "session restarted", "session", sess.ID, "attempt", cur.Number+1, "reason", act.reason, "vccSession", ps.SessionGUID)
	return stored, nil
}

// finish moves sess to a terminal status, with the merchant webhook in the same transaction,
// then tells the agent. Call it with the session's lock held.
func (s *Service) finish(ctx context.Context, sess *Session, m *Merchant, f finish) (*Session, error) {
	now := s.clock.Now().UTC()
	eventID := NewEventID()
	done, err := s.store.UpdateSession(ctx, sess.ID, func(x *Session, out *Outbox) error {
		if st := f.settled; st != nil {
			xa := x.AttemptByGUID(st.SessionGUID)
			if xa == nil {
				return ErrConflict
			}
			if st.ProviderSessionGUID != "" {
				xa.ProviderSessionGUID = st.ProviderSessionGUID
			}
			xa.ProviderEnded = true
		}
		if f.late {
			// A payment after the session closed: the money decides, whatever it was.
			x.Status, x.UpdatedAt = f.to, now
		} else if err := x.SetStatus(f.to, now); err != nil {
			return err
		}
		x.Result, x.Failure = f.result, f.failure
		x.WatchUntil = watchUntil(x, s.rules.retention, now)
		if !f.quiet {
			// Every event is kept (GET /v1/events); without a webhook URL there is nothing to
			// deliver, so it is recorded as such rather than left pending.
			msg, err := webhookMessage(eventID, m.ID, x, now)
			if err != nil {
				return err
			}
			msg.NoEndpoint = m.Webhook.URL == ""
			out.Add(msg)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if done.Open() {
		s.tracker.track(done, s.nextPoll(now)) // watched for a late payment
	} else {
		s.tracker.untrack(sess.ID)
	}
	if f.late {
		s.stats.late.Add(1)
	}
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

// status asks VCC about one provider session. A session VCC no longer knows (purged after its
// retention) is reported as expired without a result, marked Purged: decide tells that apart.
func (s *Service) status(ctx context.Context, m *Merchant, guid string) (*ProviderStatus, error) {
	st, err := s.provider.SessionStatus(ctx, m, guid)
	s.stats.polls.Add(1)
	switch {
	case errors.Is(err, ErrNotFound):
		return &ProviderStatus{SessionGUID: guid, State: StateExpired, Purged: true}, nil
	case err != nil:
		s.stats.pollErrors.Add(1)
		return nil, err
	}
	return st, nil
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
	return &OutboxMessage{ID: eventID, MerchantID: merchantID, Mode: sess.Mode, SessionID: sess.ID, Type: typ,
		Payload: body, CreatedAt: now, NextAttemptAt: now}, nil
}
