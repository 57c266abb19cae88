package bridge

import (
	"context"
	"fmt"
	"time"
)

// Discrepancy kinds a reconciliation reports.
const (
	// DiscrepancyPaidNotRecorded: VCC holds a result that may be a payment on an attempt of a
	// session that did not succeed here.
	DiscrepancyPaidNotRecorded = "paid_not_recorded"
	// DiscrepancyRecordedNotPaid: the session succeeded here, but VCC's result for the attempt
	// it succeeded on is not an approval.
	DiscrepancyRecordedNotPaid = "recorded_not_paid"
	// DiscrepancyPaidTwice: the session succeeded and VCC holds an approval on another attempt.
	DiscrepancyPaidTwice = "paid_twice"
	// DiscrepancyUnverified: the session failed because a result could not be read or did not
	// match; someone must check it with the back office.
	DiscrepancyUnverified = "unverified"
)

// Discrepancy is one attempt whose VCC result disagrees with its session.
type Discrepancy struct {
	Kind        string    `json:"kind"`
	SessionID   string    `json:"sessionId"`
	MerchantID  string    `json:"merchantId"`
	Mode        Mode      `json:"mode"`
	Status      Status    `json:"status"`
	Attempt     int       `json:"attempt"`
	SessionGUID string    `json:"vccSessionGuid"`
	Decision    string    `json:"decision,omitempty"` // VCC's result, read through the merchant's profile
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	CreatedAt   time.Time `json:"createdAt"`
}

// Reconcile compares every session created since with what VCC says about its attempts and
// returns the attempts that disagree: paid at VCC and not succeeded here, or the reverse, or paid
// twice; and sessions that failed verification. VCC is asked only about attempts it still keeps
// (still running, or ended less than its retention ago; a digital link, while it is payable and
// its retention after): older ones are judged from the record.
func (s *Service) Reconcile(ctx context.Context, since time.Time) ([]Discrepancy, error) {
	merchants, err := s.merchants.Merchants(ctx)
	if err != nil {
		return nil, err
	}
	var out []Discrepancy
	for _, m := range merchants {
		for _, mode := range []Mode{ModeTest, ModeLive} {
			err := s.eachSessionSince(ctx, m.ID, mode, since, func(sess *Session) error {
				found, err := s.reconcileSession(ctx, m, sess)
				out = append(out, found...)
				return err
			})
			if err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// eachSessionSince calls fn with every session of merchantID in mode created since, newest first.
func (s *Service) eachSessionSince(ctx context.Context, merchantID string, mode Mode, since time.Time, fn func(*Session) error) error {
	f := SessionFilter{MerchantID: merchantID, Mode: mode, Limit: 100}
	for {
		page, err := s.store.ListSessions(ctx, f)
		if err != nil {
			return err
		}
		for _, sess := range page {
			if sess.CreatedAt.Before(since) {
				return nil
			}
			if err := fn(sess); err != nil {
				return err
			}
		}
		if len(page) < f.Limit {
			return nil
		}
		f.StartingAfter = page[len(page)-1].ID
	}
}

func (s *Service) reconcileSession(ctx context.Context, m *Merchant, sess *Session) ([]Discrepancy, error) {
	if !sess.Status.Terminal() {
		return nil, nil // still in progress: the lifecycle decides it
	}
	profile := m.VCC.Profile(sess.AccountConfigurationID)
	now := s.clock.Now()
	found := func(kind string, a Attempt, decision string) Discrepancy {
		return Discrepancy{Kind: kind, SessionID: sess.ID, MerchantID: sess.MerchantID, Mode: sess.Mode, Status: sess.Status,
			Attempt: a.Number, SessionGUID: a.SessionGUID, Decision: decision, Amount: sess.Amount, Currency: sess.Currency, CreatedAt: sess.CreatedAt}
	}
	var out []Discrepancy
	unverified := sess.Status == StatusFailed && sess.Failure != nil && sess.Failure.Code == CodeTransactionVerificationFailed
	if unverified {
		var a Attempt
		if c := sess.Current(); c != nil {
			a = *c
		}
		out = append(out, found(DiscrepancyUnverified, a, resultDecision(sess.Result)))
	}
	for _, a := range sess.Attempts {
		if !a.EndedAt.IsZero() && !now.Before(askableUntil(sess, a, s.rules.retention)) {
			continue // VCC has purged it: the record is all there is
		}
		st, err := s.status(ctx, m, a.SessionGUID)
		if err != nil {
			return out, fmt.Errorf("reconcile %s attempt %d: %w", sess.ID, a.Number, err)
		}
		o := profile.Read(st.Result)
		paidHere := sess.Status == StatusSucceeded && sess.Result != nil && o.TransactionID != "" && o.TransactionID == sess.Result.TransactionID
		switch {
		case paidHere && o.Kind != OutcomeApproved:
			out = append(out, found(DiscrepancyRecordedNotPaid, a, o.Decision()))
		case paidHere:
		case sess.Status == StatusSucceeded && mayBePayment(o):
			out = append(out, found(DiscrepancyPaidTwice, a, o.Decision()))
		case sess.Status != StatusSucceeded && mayBePayment(o) && !unverified:
			out = append(out, found(DiscrepancyPaidNotRecorded, a, o.Decision()))
		}
	}
	return out, nil
}

func resultDecision(r *Result) string {
	if r == nil {
		return ""
	}
	return r.Decision
}
