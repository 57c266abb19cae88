package bridge

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDecide is the lifecycle's table: every trigger against every kind of session and every
// answer VCC can give, each case named after the DESIGN section 3 rule it pins.
func TestDecide(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cybersource := DefaultProfile()
	r := rules{maxAttempts: 3, lifetime: 15 * time.Minute, expiryGrace: 5 * time.Minute, retention: 15 * time.Minute, pollInterval: 2 * time.Second,
		browserRestartEvery: 5 * time.Second, profile: &cybersource}

	attempt := func(n int, guid string, started time.Time) Attempt {
		return Attempt{Number: n, SessionGUID: guid, StartedAt: started}
	}
	replaced := func(n int, guid string, ended time.Time) Attempt {
		a := attempt(n, guid, ended.Add(-time.Minute))
		a.EndedAt, a.EndReason = ended, EndFrameRefused
		return a
	}
	session := func(status Status, expires time.Time, attempts ...Attempt) *Session {
		return &Session{ID: "vp_cs_test_0123456789abcdef", Status: status, Amount: 1240, Currency: "GBP",
			CreatedAt: now.Add(-10 * time.Minute), ExpiresAt: expires, Attempts: attempts}
	}
	within, past, pastGrace := now.Add(10*time.Minute), now.Add(-time.Second), now.Add(-6*time.Minute)
	fresh := attempt(1, "g1", now.Add(-time.Minute))
	old := attempt(1, "g1", now.Add(-16*time.Minute))

	pending := session(StatusPending, within)
	active := session(StatusActive, within, fresh)
	activeOld := session(StatusActive, within, old)
	two := session(StatusActive, within, replaced(1, "g1", now.Add(-2*time.Minute)), attempt(2, "g2", now.Add(-2*time.Minute)))
	settledOlder := session(StatusActive, within, replaced(1, "g1", now.Add(-2*time.Minute)), attempt(2, "g2", now.Add(-2*time.Minute)))
	settledOlder.Attempts[0].ProviderEnded = true
	purgedOlder := session(StatusActive, within, replaced(1, "g1", now.Add(-16*time.Minute)), attempt(2, "g2", now.Add(-2*time.Minute)))
	atMax := session(StatusActive, within, replaced(1, "g1", now.Add(-3*time.Minute)), replaced(2, "g2", now.Add(-2*time.Minute)), attempt(3, "g3", now.Add(-time.Minute)))
	pendingPast := session(StatusPending, past)
	activePast := session(StatusActive, past, fresh)
	twoPast := session(StatusActive, past, replaced(1, "g1", now.Add(-2*time.Minute)), attempt(2, "g2", now.Add(-2*time.Minute)))
	activePastGrace := session(StatusActive, pastGrace, fresh)

	st := func(guid, state, decision string) *ProviderStatus {
		s := &ProviderStatus{SessionGUID: guid, State: state}
		if decision != "" {
			s.Result = map[string]string{"decision": decision, "reasonCode": "100", "requestID": "tx-" + guid, "Amount": "1240", "Currency": "GBP"}
		}
		return s
	}
	running := func(g string) *ProviderStatus { return st(g, StateCreated, "") }
	keying := func(g string) *ProviderStatus { return st(g, StateInProgress, "") }
	accept := func(g string) *ProviderStatus { return st(g, StateFinished, DecisionAccept) }
	reject := func(g string) *ProviderStatus { return st(g, StateFinished, DecisionReject) }
	over := func(g string) *ProviderStatus { return st(g, StateFinished, "") }
	expired := func(g string) *ProviderStatus { return st(g, StateExpired, "") }
	purged := func(g string) *ProviderStatus { p := expired(g); p.Purged = true; return p } // VCC answered 404
	wrongAmount := accept("g1")
	wrongAmount.Result["Amount"] = "124"
	wrongCurrency := accept("g1")
	wrongCurrency.Result["Currency"] = "EUR"
	noAmount := accept("g1")
	delete(noAmount.Result, "Amount")
	newPSG := running("g1")
	newPSG.ProviderSessionGUID = "psg-1"

	vccDown := errors.New("vcc: status: connection refused")
	view := func(sts ...*ProviderStatus) *providerView {
		v := &providerView{status: map[string]*ProviderStatus{}}
		for _, s := range sts {
			v.status[s.SessionGUID] = s
		}
		return v
	}
	failing := &providerView{status: map[string]*ProviderStatus{}, err: vccDown}
	// partial: VCC answered about the first attempts asked (the current one first), then failed.
	partial := func(sts ...*ProviderStatus) *providerView {
		v := view(sts...)
		v.err = vccDown
		return v
	}

	terminal := func(status Status) *Session {
		s := session(status, within, fresh)
		s.Attempts[0].EndedAt = now.Add(-time.Second)
		s.WatchUntil = s.Attempts[0].EndedAt.Add(r.retention)
		return s
	}
	succeededTwo := session(StatusSucceeded, within, replaced(1, "g1", now.Add(-2*time.Minute)), attempt(2, "g2", now.Add(-2*time.Minute)))
	succeededTwo.Attempts[1].EndedAt, succeededTwo.Attempts[1].ProviderEnded = now.Add(-time.Minute), true
	watchOver := terminal(StatusCancelled)
	watchOver.WatchUntil = now.Add(-time.Second)
	young := session(StatusActive, within, attempt(1, "g1", now.Add(-time.Second)))
	read, ttl, abandoned := trigger{kind: trigRead}, trigger{kind: trigTTL}, trigger{kind: trigAbandoned}
	restart, cancel, lifetime := trigger{kind: trigRestart}, trigger{kind: trigCancel}, trigger{kind: trigLifetime}
	refused := func(n int) trigger { return trigger{kind: trigFrameRefused, attempt: n} }
	reported := func(s *ProviderStatus) trigger { return trigger{kind: trigProviderStatus, status: s} }

	tests := []struct {
		rule    string
		sess    *Session
		trigger trigger
		view    *providerView
		want    actionKind
		to      Status    // the terminal transition, for settle, expire, fail and cancel
		failure Code      // the failure the session records
		err     Code      // what the caller hears
		ask     []string  // for actAsk
		reason  EndReason // for actRestart
		ended   bool      // actRestart: providerEnded; actRecord: ended
		late    bool      // a payment after the session closed
		note    slog.Level
	}{
		// Terminal statuses never change.
		{rule: "terminal: a restart of a succeeded session is refused", sess: terminal(StatusSucceeded), trigger: restart, want: actRefuse, err: CodeSessionWrongState},
		{rule: "terminal: a restart of an expired session answers 410", sess: terminal(StatusExpired), trigger: restart, want: actRefuse, err: CodeSessionExpired},
		{rule: "terminal: cancelling a cancelled session is refused", sess: terminal(StatusCancelled), trigger: cancel, want: actRefuse, err: CodeSessionWrongState},
		{rule: "terminal: cancelling an expired session answers 410", sess: terminal(StatusExpired), trigger: cancel, want: actRefuse, err: CodeSessionExpired},
		{rule: "terminal: a refused frame of a failed session changes nothing", sess: terminal(StatusFailed), trigger: refused(1), want: actIgnore},
		{rule: "terminal: an agent reconnecting changes nothing", sess: terminal(StatusSucceeded), trigger: lifetime, want: actIgnore},
		{rule: "terminal: reads and sweeps change nothing", sess: terminal(StatusCancelled), trigger: read, want: actIgnore},
		{rule: "terminal: the sweep changes nothing", sess: terminal(StatusExpired), trigger: ttl, want: actIgnore},
		// VCC purges a session 15 minutes after it ends, result and all (a 404).
		{rule: "purged: a current attempt VCC purged may have been paid unseen: fail unverified, never restart", sess: activeOld, trigger: reported(purged("g1")), want: actFail, to: StatusFailed, failure: CodeTransactionVerificationFailed, note: slog.LevelError},
		{rule: "purged: a restart asked for after VCC purged the current attempt fails it unverified instead", sess: activeOld, trigger: restart, view: view(purged("g1")), want: actFail, to: StatusFailed, failure: CodeTransactionVerificationFailed, note: slog.LevelError},
		{rule: "purged: past its TTL too, the session fails unverified rather than expiring", sess: session(StatusActive, past, old), trigger: ttl, view: view(purged("g1")), want: actFail, to: StatusFailed, failure: CodeTransactionVerificationFailed, note: slog.LevelError},
		{rule: "purged: a payment VCC still holds on another attempt settles the session", sess: session(StatusActive, within, replaced(1, "g1", now.Add(-2*time.Minute)), old), trigger: reported(purged("g1")), view: view(accept("g1")), want: actSettle, to: StatusSucceeded, note: slog.LevelWarn},
		{rule: "purged: VCC not knowing an attempt too young to have been purged means it never held a result: it ended, a new one starts", sess: active, trigger: reported(purged("g1")), want: actRestart, reason: EndProviderExpired, ended: true},
		{rule: "late: a REJECT after cancel only marks the attempt over", sess: terminal(StatusCancelled), trigger: reported(reject("g1")), want: actRecord, ended: true},
		{rule: "late: a verified ACCEPT after cancel makes the session succeeded, late", sess: terminal(StatusCancelled), trigger: reported(accept("g1")), want: actSettle, to: StatusSucceeded, late: true, note: slog.LevelWarn},
		{rule: "late: a verified ACCEPT after expiry makes the session succeeded, late", sess: terminal(StatusExpired), trigger: reported(accept("g1")), want: actSettle, to: StatusSucceeded, late: true, note: slog.LevelWarn},
		{rule: "late: a verified ACCEPT after a failure makes the session succeeded, late", sess: terminal(StatusFailed), trigger: reported(accept("g1")), want: actSettle, to: StatusSucceeded, late: true, note: slog.LevelWarn},
		{rule: "late: an ACCEPT that does not verify is logged for reconciliation, status unchanged", sess: terminal(StatusCancelled), trigger: reported(wrongAmount), want: actRecord, ended: true, note: slog.LevelError},
		{rule: "late: unreadable result data is logged for reconciliation, status unchanged", sess: terminal(StatusExpired), trigger: reported(&ProviderStatus{SessionGUID: "g1", State: StateFinished, Result: map[string]string{"ApprovalStatus": "1"}}), want: actRecord, ended: true, note: slog.LevelError},
		{rule: "late: a second payment on a succeeded session is logged for reconciliation", sess: succeededTwo, trigger: reported(accept("g1")), want: actRecord, ended: true, note: slog.LevelError},
		{rule: "late: a report about an attempt VCC already said is over is ignored", sess: succeededTwo, trigger: reported(accept("g2")), want: actIgnore},
		{rule: "late: a provider session ending without payment after cancel is marked over", sess: terminal(StatusCancelled), trigger: reported(expired("g1")), want: actRecord, ended: true},
		{rule: "late: a running provider session after cancel changes nothing", sess: terminal(StatusCancelled), trigger: reported(keying("g1")), want: actIgnore},
		{rule: "late: the sweep ends the watch once VCC has purged every attempt", sess: watchOver, trigger: ttl, view: view(expired("g1")), want: actRecord},
		{rule: "late: at the end of the watch VCC is asked once more about every attempt it was for", sess: watchOver, trigger: ttl, want: actAsk, ask: []string{"g1"}},
		{rule: "late: a verified ACCEPT found at the end of the watch makes the session succeeded, late", sess: watchOver, trigger: ttl, view: view(accept("g1")), want: actSettle, to: StatusSucceeded, late: true, note: slog.LevelWarn},
		{rule: "late: a running attempt at the end of the watch ends it", sess: watchOver, trigger: ttl, view: view(running("g1")), want: actRecord},
		{rule: "late: VCC unable to answer at the end of the watch ends it, logged for reconciliation", sess: watchOver, trigger: ttl, view: failing, want: actRecord, note: slog.LevelError},
		{rule: "late: the sweep keeps the watch while VCC keeps results", sess: terminal(StatusCancelled), trigger: ttl, want: actIgnore},

		// TTL, with its grace.
		{rule: "ttl: a pending session past its TTL expires", sess: pendingPast, trigger: ttl, want: actExpire, to: StatusExpired},
		{rule: "ttl: an active session past its TTL asks VCC about every attempt that could carry a payment", sess: twoPast, trigger: ttl, want: actAsk, ask: []string{"g2", "g1"}},
		{rule: "ttl: nothing paid, nobody keying: expire", sess: twoPast, trigger: ttl, view: view(running("g2"), running("g1")), want: actExpire, to: StatusExpired},
		{rule: "ttl: an ACCEPT on a replaced attempt settles the session instead", sess: twoPast, trigger: ttl, view: view(running("g2"), accept("g1")), want: actSettle, to: StatusSucceeded, note: slog.LevelWarn},
		{rule: "ttl: a REJECT on the current attempt settles it as failed", sess: activePast, trigger: ttl, view: view(reject("g1")), want: actSettle, to: StatusFailed, failure: CodeProviderChargeFailed},
		{rule: "ttl: the customer keying within the grace postpones expiry", sess: activePast, trigger: ttl, view: view(keying("g1")), want: actPostpone, note: slog.LevelInfo},
		{rule: "ttl: VCC unable to answer within the grace postpones expiry", sess: activePast, trigger: ttl, view: failing, want: actPostpone, note: slog.LevelInfo},
		{rule: "ttl: past the grace, keying or not, the session expires", sess: activePastGrace, trigger: ttl, view: view(keying("g1")), want: actExpire, to: StatusExpired},
		{rule: "ttl: past the grace with VCC silent, it expires, logged for reconciliation", sess: activePastGrace, trigger: ttl, view: failing, want: actExpire, to: StatusExpired, note: slog.LevelError},
		{rule: "ttl: a read past the TTL settles the session like the sweep", sess: activePast, trigger: read, view: view(running("g1")), want: actExpire, to: StatusExpired},
		{rule: "ttl: a restart past the TTL while keying postpones and is refused with 410", sess: activePast, trigger: restart, view: view(keying("g1")), want: actPostpone, err: CodeSessionExpired, note: slog.LevelInfo},
		{rule: "ttl: a restart past the TTL expires the session and answers 410", sess: activePast, trigger: restart, view: view(running("g1")), want: actExpire, to: StatusExpired, err: CodeSessionExpired},
		{rule: "ttl: a refused frame past the TTL expires the session", sess: activePast, trigger: refused(1), view: view(running("g1")), want: actExpire, to: StatusExpired},
		{rule: "ttl: a cancel past the TTL while keying is refused", sess: activePast, trigger: cancel, view: view(keying("g1")), want: actRefuse, err: CodeSessionWrongState},
		{rule: "ttl: a cancel past the TTL with VCC silent within the grace cancels", sess: activePast, trigger: cancel, view: failing, want: actCancel, to: StatusCancelled, note: slog.LevelWarn},
		{rule: "ttl: a cancel past the TTL with nothing paid expires and answers 410", sess: activePast, trigger: cancel, view: view(running("g1")), want: actExpire, to: StatusExpired, err: CodeSessionExpired},
		{rule: "ttl: a cancel past the TTL loses to a payment", sess: activePast, trigger: cancel, view: view(accept("g1")), want: actSettle, to: StatusSucceeded, err: CodeSessionWrongState},

		// Open sessions within their TTL.
		{rule: "open: a read within the TTL changes nothing", sess: active, trigger: read, want: actIgnore},
		{rule: "open: the sweep before the TTL changes nothing", sess: active, trigger: ttl, want: actIgnore},
		{rule: "abandoned: a create that never finished fails the pending session, unverifiable: VCC may have started one", sess: pending, trigger: abandoned, want: actFail, to: StatusFailed, failure: CodeTransactionVerificationFailed},
		{rule: "abandoned: an active session is not abandoned", sess: active, trigger: abandoned, want: actIgnore},

		// Cancel.
		{rule: "cancel: a pending session cancels without asking VCC", sess: pending, trigger: cancel, want: actCancel, to: StatusCancelled},
		{rule: "cancel: an active session asks VCC about every attempt that could carry a payment", sess: two, trigger: cancel, want: actAsk, ask: []string{"g2", "g1"}},
		{rule: "cancel: nothing paid, nobody keying: cancelled", sess: two, trigger: cancel, view: view(running("g2"), running("g1")), want: actCancel, to: StatusCancelled},
		{rule: "cancel: a payment VCC holds wins and the cancel is refused", sess: two, trigger: cancel, view: view(running("g2"), accept("g1")), want: actSettle, to: StatusSucceeded, err: CodeSessionWrongState, note: slog.LevelWarn},
		{rule: "cancel: never while the customer is keying", sess: active, trigger: cancel, view: view(keying("g1")), want: actRefuse, err: CodeSessionWrongState},
		{rule: "cancel: VCC unable to answer does not stop a cancel", sess: active, trigger: cancel, view: failing, want: actCancel, to: StatusCancelled, note: slog.LevelWarn},
		{rule: "cancel: never while VCC reports the customer keying, even if asking about a replaced attempt then failed", sess: two, trigger: cancel, view: partial(keying("g2")), want: actRefuse, err: CodeSessionWrongState},
		{rule: "ttl: a cancel past the TTL while VCC reports keying is refused, even if asking about a replaced attempt then failed", sess: twoPast, trigger: cancel, view: partial(keying("g2")), want: actRefuse, err: CodeSessionWrongState},

		// Restart triggers 1, 2 and 4.
		{rule: "restart: reports about an older attempt are ignored", sess: two, trigger: refused(1), want: actIgnore},
		{rule: "restart: concurrent triggers make one attempt: the second report is about an older attempt", sess: two, trigger: refused(1), view: view(running("g2")), want: actIgnore},
		{rule: "restart: a refused frame asks VCC about the current attempt only", sess: two, trigger: refused(2), want: actAsk, ask: []string{"g2"}},
		{rule: "restart: a refused frame starts a new attempt", sess: active, trigger: refused(1), view: view(running("g1")), want: actRestart, reason: EndFrameRefused},
		{rule: "restart: VCC saying the provider session ended marks the old attempt over", sess: active, trigger: refused(1), view: view(expired("g1")), want: actRestart, reason: EndFrameRefused, ended: true},
		{rule: "restart: on request", sess: active, trigger: restart, view: view(running("g1")), want: actRestart, reason: EndRestartRequested},
		{rule: "restart: never while VCC reports capture in progress", sess: active, trigger: restart, view: view(keying("g1")), want: actRefuse, err: CodeSessionWrongState},
		{rule: "restart: never while keying, from the browser either", sess: active, trigger: refused(1), view: view(keying("g1")), want: actRefuse, err: CodeSessionWrongState},
		{rule: "restart: a finished payment settles the session instead and the restart is refused", sess: active, trigger: restart, view: view(accept("g1")), want: actSettle, to: StatusSucceeded, err: CodeSessionWrongState},
		{rule: "restart: a decline settles the session and the restart answers the decline", sess: active, trigger: restart, view: view(reject("g1")), want: actSettle, to: StatusFailed, failure: CodeProviderChargeFailed, err: CodeProviderChargeFailed},
		{rule: "restart: VCC unable to answer refuses the restart (nobody knows if money moved)", sess: active, trigger: restart, view: failing, want: actRefuse, err: ""},
		{rule: "restart: at maxAttempts the session fails with provider_attestation_failed", sess: atMax, trigger: refused(3), view: view(running("g3")), want: actFail, to: StatusFailed, failure: CodeProviderAttestationFailed, err: CodeProviderAttestationFailed, note: slog.LevelWarn},
		{rule: "restart: a pending session cannot be restarted", sess: pending, trigger: restart, want: actRefuse, err: CodeSessionWrongState},
		{rule: "restart: a refused frame of a pending session is ignored", sess: pending, trigger: refused(1), want: actIgnore},
		{rule: "browser: a refused frame of an attempt younger than the restart ration is ignored", sess: young, trigger: trigger{kind: trigFrameRefused, attempt: 1, fromBrowser: true}, want: actIgnore},
		{rule: "browser: a socket's restart of a young attempt is refused with rate_limit_exceeded", sess: young, trigger: trigger{kind: trigRestart, fromBrowser: true}, want: actRefuse, err: CodeRateLimitExceeded},
		{rule: "browser: the API's restart is not rationed", sess: young, trigger: restart, view: view(running("g1")), want: actRestart, reason: EndRestartRequested},
		{rule: "browser: past the ration a refused frame restarts", sess: active, trigger: trigger{kind: trigFrameRefused, attempt: 1, fromBrowser: true}, view: view(running("g1")), want: actRestart, reason: EndFrameRefused},
		{rule: "lifetime: an attempt younger than the provider lifetime is kept", sess: active, trigger: lifetime, want: actIgnore},
		{rule: "lifetime: an attempt older than the provider lifetime asks VCC first", sess: activeOld, trigger: lifetime, want: actAsk, ask: []string{"g1"}},
		{rule: "lifetime: an attempt older than the provider lifetime is restarted", sess: activeOld, trigger: lifetime, view: view(running("g1")), want: actRestart, reason: EndLifetimeElapsed},
		{rule: "lifetime: not while the customer is keying", sess: activeOld, trigger: lifetime, view: view(keying("g1")), want: actRefuse, err: CodeSessionWrongState},

		// Trigger 3 and outcomes: VCC reports on one attempt.
		{rule: "provider: the current attempt ended without a payment restarts it", sess: active, trigger: reported(over("g1")), want: actRestart, reason: EndProviderExpired, ended: true},
		{rule: "provider: an expired current attempt restarts it", sess: active, trigger: reported(expired("g1")), want: actRestart, reason: EndProviderExpired, ended: true},
		{rule: "provider: an ended attempt at maxAttempts fails the session", sess: atMax, trigger: reported(over("g3")), want: actFail, to: StatusFailed, failure: CodeProviderAttestationFailed, err: CodeProviderAttestationFailed, note: slog.LevelWarn},
		{rule: "outcome: approved, amount and currency verified: succeeded", sess: active, trigger: reported(accept("g1")), want: actSettle, to: StatusSucceeded},
		{rule: "outcome: declined: failed with provider_charge_failed", sess: active, trigger: reported(reject("g1")), want: actSettle, to: StatusFailed, failure: CodeProviderChargeFailed},
		{rule: "outcome: error: failed with provider_charge_failed", sess: active, trigger: reported(st("g1", StateFinished, DecisionError)), want: actSettle, to: StatusFailed, failure: CodeProviderChargeFailed},
		{rule: "outcome: amount mismatch: transaction_verification_failed", sess: active, trigger: reported(wrongAmount), want: actSettle, to: StatusFailed, failure: CodeTransactionVerificationFailed, note: slog.LevelError},
		{rule: "outcome: currency mismatch: transaction_verification_failed", sess: active, trigger: reported(wrongCurrency), want: actSettle, to: StatusFailed, failure: CodeTransactionVerificationFailed, note: slog.LevelError},
		{rule: "outcome: no amount: transaction_verification_failed", sess: active, trigger: reported(noAmount), want: actSettle, to: StatusFailed, failure: CodeTransactionVerificationFailed, note: slog.LevelError},
		{rule: "outcome: replaced attempts still settling: an ACCEPT there succeeds (money moved)", sess: two, trigger: reported(accept("g1")), want: actSettle, to: StatusSucceeded, note: slog.LevelWarn},
		{rule: "outcome: replaced attempts still settling: a REJECT there only marks it over", sess: two, trigger: reported(reject("g1")), want: actRecord, ended: true},
		{rule: "outcome: replaced attempts still settling: one ending without payment is marked over", sess: two, trigger: reported(expired("g1")), want: actRecord, ended: true},
		{rule: "provider: a new provider session GUID is recorded", sess: active, trigger: reported(newPSG), want: actRecord},
		{rule: "provider: a running attempt changes nothing", sess: active, trigger: reported(running("g1")), want: actIgnore},
		{rule: "provider: keying changes nothing", sess: active, trigger: reported(keying("g1")), want: actIgnore},
		{rule: "provider: a report about an attempt this session never had is ignored", sess: active, trigger: reported(accept("g9")), want: actIgnore},
		{rule: "provider: a report about a pending session is ignored", sess: pending, trigger: reported(accept("g1")), want: actIgnore},
		{rule: "provider: past the TTL a report settles the session with the TTL's rules, asking VCC afresh (the report may predate the lock)", sess: twoPast, trigger: reported(running("g2")), want: actAsk, ask: []string{"g2", "g1"}},

		// Which replaced attempts are still asked about.
		{rule: "settling: a replaced attempt VCC said is over is not asked about", sess: settledOlder, trigger: cancel, want: actAsk, ask: []string{"g2"}},
		{rule: "settling: a replaced attempt past VCC's retention is not asked about", sess: purgedOlder, trigger: cancel, want: actAsk, ask: []string{"g2"}},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			before := tt.sess.Clone()
			got := decide(tt.sess, tt.view, tt.trigger, now, r)
			assert.Equal(t, before, tt.sess, "decide changes nothing it is given")
			require.Equal(t, tt.want.String(), got.kind.String())
			assert.Equal(t, tt.ask, got.ask, "asked")
			assert.Equal(t, tt.reason, got.reason, "end reason")
			ended := got.providerEnded || got.ended
			assert.Equal(t, tt.ended, ended, "provider ended")
			switch got.kind {
			case actSettle, actExpire, actFail, actCancel:
				assert.Equal(t, tt.to, got.finish.to, "transition")
				assert.Equal(t, tt.late, got.finish.late, "late")
				if tt.late {
					assert.True(t, got.finish.result.Late, "the result says it came late")
				}
				var failure Code
				if got.finish.failure != nil {
					failure = got.finish.failure.Code
				}
				assert.Equal(t, tt.failure, failure, "failure")
				if got.kind == actSettle {
					require.NotNil(t, got.finish.settled, "a settle names the attempt it settles")
					assert.Equal(t, "tx-"+got.finish.settled.SessionGUID, got.finish.result.TransactionID)
				}
			case actPostpone:
				assert.Equal(t, now.Add(r.pollInterval), got.until, "looked at again after a poll interval")
			}
			switch {
			case tt.rule == "restart: VCC unable to answer refuses the restart (nobody knows if money moved)":
				assert.ErrorIs(t, got.err, vccDown)
			case tt.err == "":
				assert.NoError(t, got.err)
			default:
				require.Error(t, got.err)
				assert.Equal(t, tt.err, AsError(got.err).Code)
			}
			if tt.note != 0 || got.note != nil {
				require.NotNil(t, got.note, "a log line for operators")
				assert.Equal(t, tt.note, got.note.level)
			}
		})
	}
}

// TestDecideAsksOnce: once VCC has answered (or failed to), decide never asks again, for any
// trigger and session, so the executor calls VCC at most once per attempt per trigger.
func TestDecideAsksOnce(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	profile := DefaultProfile()
	r := rules{maxAttempts: 5, lifetime: time.Minute, expiryGrace: time.Minute, retention: 15 * time.Minute, pollInterval: time.Second, profile: &profile}
	a1 := Attempt{Number: 1, SessionGUID: "g1", StartedAt: now.Add(-time.Hour), EndedAt: now.Add(-time.Minute), EndReason: EndFrameRefused}
	a2 := Attempt{Number: 2, SessionGUID: "g2", StartedAt: now.Add(-time.Hour)}
	for _, expires := range []time.Time{now.Add(time.Hour), now.Add(-time.Second), now.Add(-time.Hour)} {
		sess := &Session{ID: "s", Status: StatusActive, Amount: 1, Currency: "GBP", ExpiresAt: expires, Attempts: []Attempt{a1, a2}}
		for kind := range triggerKind(len(triggerNames)) {
			tr := trigger{kind: kind}
			if kind == trigProviderStatus {
				tr.status = &ProviderStatus{SessionGUID: "g2", State: StateExpired}
			}
			first := decide(sess, nil, tr, now, r)
			if first.kind != actAsk {
				continue
			}
			answered := &providerView{status: map[string]*ProviderStatus{}}
			for _, g := range first.ask {
				answered.status[g] = &ProviderStatus{SessionGUID: g, State: StateCreated}
			}
			failed := &providerView{status: map[string]*ProviderStatus{}, err: errors.New("down")}
			for _, v := range []*providerView{answered, failed} {
				assert.NotEqual(t, actAsk, decide(sess, v, tr, now, r).kind, "%s, expires %s", kind, expires)
			}
		}
	}
}

// TestDecideOutcomeByProfile: result data is read through the merchant's gateway profile. For
// every built-in profile and a custom one: approved and verified succeeds; declined and error
// fail with provider_charge_failed; data the profile cannot read never restarts and fails with
// transaction_verification_failed, keeping the data without anything shaped like a card number;
// no data while running changes nothing; finished without data restarts; an amount or currency
// that does not match fails verification unless the profile explicitly does not verify.
func TestDecideOutcomeByProfile(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cybersource, _ := BuiltinProfile(ProfileCyberSource)
	chase, _ := BuiltinProfile(ProfileChaseOrbital)
	custom := GatewayProfile{Name: ProfileCustom, StatusKey: "result", Approved: []string{"APPROVED"}, Declined: []string{"DECLINED"},
		Errored: []string{"FAILED"}, TransactionIDKey: "txn", ReasonKey: "why", AmountKey: "charged", AmountFormat: AmountDecimal,
		CurrencyKey: "ccy", VerifyAmount: true, PaymentData: DefaultPaymentDataKeys}
	unverified := GatewayProfile{Name: ProfileCustom, StatusKey: "ApprovalStatus", Approved: []string{"1"}, Declined: []string{"0"},
		TransactionIDKey: "TxRefNum", AmountFormat: AmountMinor, VerifyAmount: false, PaymentData: DefaultPaymentDataKeys}
	for _, p := range []GatewayProfile{cybersource, chase, custom, unverified} {
		require.NoError(t, p.Check(), p.Name)
	}

	type shape struct{ approved, declined, errored, amountMismatch, currencyMismatch map[string]string }
	shapes := map[string]shape{
		"cybersource": {
			approved:         map[string]string{"decision": "ACCEPT", "reasonCode": "100", "requestID": "tx-1", "Amount": "1240", "Currency": "GBP"},
			declined:         map[string]string{"decision": "REJECT", "reasonCode": "202", "requestID": "tx-1"},
			errored:          map[string]string{"decision": "ERROR", "reasonCode": "150", "requestID": "tx-1"},
			amountMismatch:   map[string]string{"decision": "ACCEPT", "requestID": "tx-1", "Amount": "124", "Currency": "GBP"},
			currencyMismatch: map[string]string{"decision": "ACCEPT", "requestID": "tx-1", "Amount": "1240", "Currency": "EUR"},
		},
		"chase_orbital": {
			approved:         map[string]string{"ApprovalStatus": "1", "RespCode": "00", "TxRefNum": "tx-1", "Amount": "1240", "Currency": "GBP"},
			declined:         map[string]string{"ApprovalStatus": "0", "RespCode": "05", "TxRefNum": "tx-1"},
			errored:          map[string]string{"ApprovalStatus": "2", "RespCode": "", "TxRefNum": "tx-1"},
			amountMismatch:   map[string]string{"ApprovalStatus": "1", "TxRefNum": "tx-1", "Amount": "1241", "Currency": "GBP"},
			currencyMismatch: map[string]string{"ApprovalStatus": "1", "TxRefNum": "tx-1", "Amount": "1240", "Currency": "USD"},
		},
		"custom": {
			approved:         map[string]string{"result": "approved", "txn": "tx-1", "charged": "£12.40", "ccy": "gbp"},
			declined:         map[string]string{"result": "DECLINED", "why": "insufficient funds", "txn": "tx-1"},
			errored:          map[string]string{"result": "FAILED", "txn": "tx-1"},
			amountMismatch:   map[string]string{"result": "APPROVED", "txn": "tx-1", "charged": "12.04", "ccy": "GBP"},
			currencyMismatch: map[string]string{"result": "APPROVED", "txn": "tx-1", "charged": "12.40", "ccy": "EUR"},
		},
		"custom, amount not verified": {
			approved:         map[string]string{"ApprovalStatus": "1", "TxRefNum": "tx-1"},
			declined:         map[string]string{"ApprovalStatus": "0", "TxRefNum": "tx-1"},
			errored:          nil, // this profile lists no error value: covered by unreadable
			amountMismatch:   map[string]string{"ApprovalStatus": "1", "TxRefNum": "tx-1", "Amount": "1"},
			currencyMismatch: map[string]string{"ApprovalStatus": "1", "TxRefNum": "tx-1", "Currency": "EUR"},
		},
	}
	profiles := map[string]GatewayProfile{"cybersource": cybersource, "chase_orbital": chase, "custom": custom, "custom, amount not verified": unverified}
	// Another gateway's shape is unreadable to each profile; a card number in it is removed.
	foreign := map[string]map[string]string{
		"cybersource":                 {"ApprovalStatus": "1", "TxRefNum": "tx-1", "CardNumber": "4111 1111 1111 1111"},
		"chase_orbital":               {"decision": "ACCEPT", "requestID": "tx-1", "pan": "4111-1111-1111-1111"},
		"custom":                      {"decision": "REVIEW", "requestID": "tx-1", "note": "card 4111111111111111 flagged"},
		"custom, amount not verified": {"ApprovalStatus": "7", "TxRefNum": "tx-1", "acct": "4111111111111111"},
	}

	for name, p := range profiles {
		sh := shapes[name]
		r := rules{maxAttempts: 5, lifetime: 15 * time.Minute, expiryGrace: 5 * time.Minute, retention: 15 * time.Minute, pollInterval: time.Second, profile: &p}
		sess := &Session{ID: "s", Status: StatusActive, Amount: 1240, Currency: "GBP", ExpiresAt: now.Add(time.Hour),
			Attempts: []Attempt{{Number: 1, SessionGUID: "g1", StartedAt: now.Add(-time.Minute)}}}
		report := func(state string, data map[string]string) action {
			return decide(sess, nil, trigger{kind: trigProviderStatus, status: &ProviderStatus{SessionGUID: "g1", State: state, Result: data}}, now, r)
		}
		mismatch := StatusFailed
		if !p.VerifyAmount {
			mismatch = StatusSucceeded
		}
		cases := []struct {
			outcome string
			data    map[string]string
			state   string
			want    actionKind
			to      Status
			code    Code
		}{
			{"approved", sh.approved, StateFinished, actSettle, StatusSucceeded, ""},
			{"declined", sh.declined, StateFinished, actSettle, StatusFailed, CodeProviderChargeFailed},
			{"error", sh.errored, StateFinished, actSettle, StatusFailed, CodeProviderChargeFailed},
			{"unreadable", foreign[name], StateFinished, actSettle, StatusFailed, CodeTransactionVerificationFailed},
			{"unreadable while the state says running", foreign[name], StateInProgress, actSettle, StatusFailed, CodeTransactionVerificationFailed},
			{"no result yet", nil, StateInProgress, actIgnore, "", ""},
			{"finished without a result", nil, StateFinished, actRestart, "", ""},
			{"amount mismatch", sh.amountMismatch, StateFinished, actSettle, mismatch, map[bool]Code{true: CodeTransactionVerificationFailed}[p.VerifyAmount]},
			{"currency mismatch", sh.currencyMismatch, StateFinished, actSettle, mismatch, map[bool]Code{true: CodeTransactionVerificationFailed}[p.VerifyAmount]},
		}
		for _, c := range cases {
			if c.data == nil && c.outcome == "error" {
				continue
			}
			t.Run(name+"/"+c.outcome, func(t *testing.T) {
				got := report(c.state, c.data)
				require.Equal(t, c.want.String(), got.kind.String())
				if c.want != actSettle {
					return
				}
				assert.Equal(t, c.to, got.finish.to)
				var code Code
				if got.finish.failure != nil {
					code = got.finish.failure.Code
				}
				assert.Equal(t, c.code, code)
				if !strings.HasPrefix(c.outcome, "unreadable") {
					assert.Equal(t, "tx-1", got.finish.result.TransactionID)
				}
				if c.code == CodeTransactionVerificationFailed {
					assert.Contains(t, got.finish.failure.Error, "Do not take it again", "the agent is told not to take the payment again")
				}
				if c.outcome == "unreadable" || c.outcome == "unreadable while the state says running" {
					assert.Equal(t, DecisionUnknown, got.finish.result.Decision)
					require.NotEmpty(t, got.finish.result.Data, "the raw keys are kept for reconciliation")
					assert.Len(t, got.finish.result.Data, len(c.data))
					for k, v := range got.finish.result.Data {
						assert.False(t, HasCardNumber(k) || HasCardNumber(v), "no card number kept: %q=%q", k, v)
					}
					assert.NotContains(t, got.finish.failure.Error, "4111")
				} else {
					assert.Empty(t, got.finish.result.Data, "readable results keep only the typed fields")
				}
			})
		}
		t.Run(name+"/a restart trigger never restarts a provider session with result data", func(t *testing.T) {
			got := decide(sess, &providerView{status: map[string]*ProviderStatus{"g1": {SessionGUID: "g1", State: StateFinished, Result: foreign[name]}}},
				trigger{kind: trigFrameRefused, attempt: 1}, now, r)
			assert.NotEqual(t, actRestart.String(), got.kind.String())
		})
	}
}

// TestHasCardNumber: 13 to 19 digits passing Luhn, spaces or dashes between digits allowed.
func TestHasCardNumber(t *testing.T) {
	for s, want := range map[string]bool{
		"4111111111111111":        true,
		"4111 1111 1111 1111":     true,
		"4111-1111-1111-1111":     true,
		"pan=5555555555554444;":   true,
		"378282246310005":         true, // 15-digit Amex
		"6011111111111117":        true,
		"4111111111111112":        false, // fails Luhn
		"411111111111":            false, // 12 digits
		"1240":                    false,
		"6193551963456543":        false, // a CyberSource requestID that fails Luhn
		"2026-03-01T10:00:00.5":   false,
		"tx 4111  1111 1111 1111": false, // two spaces break the run
		"":                        false,
	} {
		assert.Equal(t, want, HasCardNumber(s), "%q", s)
	}
	got := SanitizeResultData(map[string]string{"a": "4111111111111111", "4111111111111111": "x", "b": "ok"})
	assert.Equal(t, "ok", got["b"])
	for k, v := range got {
		assert.False(t, HasCardNumber(k) || HasCardNumber(v), "%q=%q", k, v)
	}
}

// TestDecideNegativeAmountNeverVerifies: a decimal amount written as negative (a credit or
// refund: "-12.40", "(12.40)", "12.40-") is not the session's amount, so an approval carrying it
// fails verification instead of making the session succeeded.
func TestDecideNegativeAmountNeverVerifies(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	custom := GatewayProfile{Name: ProfileCustom, StatusKey: "result", Approved: []string{"APPROVED"}, Declined: []string{"DECLINED"},
		TransactionIDKey: "txn", AmountKey: "charged", AmountFormat: AmountDecimal, CurrencyKey: "ccy", VerifyAmount: true,
		PaymentData: DefaultPaymentDataKeys}
	require.NoError(t, custom.Check())
	r := rules{maxAttempts: 5, lifetime: 15 * time.Minute, expiryGrace: 5 * time.Minute, retention: 15 * time.Minute, pollInterval: time.Second, profile: &custom}
	sess := &Session{ID: "s", Status: StatusActive, Amount: 1240, Currency: "GBP", ExpiresAt: now.Add(time.Hour),
		Attempts: []Attempt{{Number: 1, SessionGUID: "g1", StartedAt: now.Add(-time.Minute)}}}
	for _, tt := range []struct {
		charged string
		want    Status
	}{
		{"12.40", StatusSucceeded},
		{"£12.40", StatusSucceeded},
		{"-12.40", StatusFailed},
		{"-£12.40", StatusFailed},
		{"(12.40)", StatusFailed},
		{"12.40-", StatusFailed},
		{"−12.40", StatusFailed}, // U+2212 minus sign
	} {
		t.Run(tt.charged, func(t *testing.T) {
			st := &ProviderStatus{SessionGUID: "g1", State: StateFinished, Result: map[string]string{"result": "APPROVED", "txn": "tx-1", "charged": tt.charged, "ccy": "GBP"}}
			got := decide(sess, nil, trigger{kind: trigProviderStatus, status: st}, now, r)
			require.Equal(t, actSettle.String(), got.kind.String())
			assert.Equal(t, tt.want, got.finish.to)
			if tt.want == StatusFailed {
				require.NotNil(t, got.finish.failure)
				assert.Equal(t, CodeTransactionVerificationFailed, got.finish.failure.Code)
			}
		})
	}
}
