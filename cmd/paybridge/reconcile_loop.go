package main

import (
	"context"
	"time"

	"github.com/paybridge/paybridge/bridge"
)

const (
	// defaultReconcileEvery is how often serve reconciles with VCC in the background: often enough
	// that a discrepancy is seen while VCC still keeps the attempt (15 minutes), rarely enough that
	// asking VCC about every recent attempt costs little.
	defaultReconcileEvery = 5 * time.Minute
	// reconcileWindow is how far back the background reconciliation looks, as
	// `paybridge reconcile` does by default.
	reconcileWindow = 24 * time.Hour
)

// reconcileLoop runs the reconciliation every a.reconcileEvery until ctx ends, exports what each
// run finds as paybridge_reconcile_discrepancies{kind}, and logs each discrepancy at error level
// the first time a run finds it (someone must look at it; the next runs only keep the gauge up).
func (a *app) reconcileLoop(ctx context.Context) {
	every := a.reconcileEvery
	if every <= 0 {
		every = defaultReconcileEvery
	}
	reported := map[string]bool{} // discrepancies already logged, by discrepancyKey
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		found, err := a.sessions.Reconcile(ctx, a.clock.Now().Add(-reconcileWindow))
		if err != nil {
			if ctx.Err() == nil {
				// The gauge keeps the last complete run's figures: a partial run would lower it.
				a.logger.WarnContext(ctx, "reconciliation incomplete; will try again", "err", err, "retryIn", every.String())
			}
			continue
		}
		a.server.SetReconcileDiscrepancies(found)
		seen := make(map[string]bool, len(found))
		for _, d := range found {
			k := discrepancyKey(d)
			seen[k] = true
			if !reported[k] {
				a.logger.ErrorContext(ctx, "reconciliation: VCC disagrees with paybridge; check this payment with the back office",
					discrepancyAttrs(d)...)
			}
		}
		reported = seen // one that was resolved and comes back is logged again
	}
}

// discrepancyKey identifies one discrepancy across runs.
func discrepancyKey(d bridge.Discrepancy) string {
	return d.Kind + "\x00" + d.SessionID + "\x00" + d.SessionGUID
}

// discrepancyAttrs are the log attributes of d: identifiers, status and amount, nothing secret
// (a Discrepancy holds no token, key or card data).
func discrepancyAttrs(d bridge.Discrepancy) []any {
	return []any{"kind", d.Kind, "session", d.SessionID, "merchant", d.MerchantID, "mode", string(d.Mode),
		"status", string(d.Status), "attempt", d.Attempt, "vccSession", d.SessionGUID, "decision", d.Decision,
		"amount", d.Amount, "currency", d.Currency}
}
