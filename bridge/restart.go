package bridge

import (
	"context"
	"errors"
	"fmt"
)

// restartRequest describes one restart trigger.
type restartRequest struct {
	attempt int             // the attempt the trigger is about; 0: whatever is current
	reason  EndReason       // recorded on the attempt that ends
	status  *ProviderStatus // VCC's view, when the trigger came from VCC; nil: ask VCC
}

// restart applies DESIGN section 3's rules: never while the customer is keying, after a terminal
// status or past the session's TTL; older attempts' reports ignored (errStaleAttempt, with the
// session); at most maxAttempts attempts.
func (s *Service) restart(ctx context.Context, id string, req restartRequest) (*Session, error) {
	unlock, err := s.locks.lock(ctx, id)
	if err != nil {
		return nil, err
	}
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
	if !s.clock.Now().Before(sess.ExpiresAt) {
		// Past its TTL, kept open only while VCC confirms no payment is under way.
		if req.attempt != 0 {
			return sess, errStaleAttempt
		}
		return nil, Errorf(CodeSessionExpired, "Session %s reached its TTL at %s; it is not restarted.", sess.ID, sess.ExpiresAt.Format("15:04:05Z07:00"))
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
		done, err := s.finishLocked(ctx, sess, m, finish{to: StatusFailed, failure: &Failure{Code: CodeProviderAttestationFailed, Error: msg}})
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
	ended := next.Current()
	ended.EndedAt, ended.EndReason = now, req.reason
	// VCC itself said this provider session is over: no payment can come of it any more.
	ended.ProviderEnded = st != nil && st.EndedWithoutPayment() || st == nil
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
		// The new page went out but is not on record: say so; the session keeps its old attempt
		// and the next refused frame or poll starts another.
		s.publish(sess, EventError, "", SessionEventData{Session: sess.View(), Code: CodeInternalError,
			Error: "paybridge could not record the new payment page.", Fix: Info(CodeInternalError).Fix})
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
