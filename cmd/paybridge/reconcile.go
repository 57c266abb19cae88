package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
)

// Exit codes of `paybridge reconcile`, like diff's: the report is the answer, and a script must
// tell "found something" from "could not look".
const (
	exitReconcileClean = 0 // no discrepancies
	exitReconcileError = 1 // the reconciliation could not run, or not to the end (as any command's failure)
	exitReconcileFound = 3 // discrepancies found and listed (2 is left to usage errors)
)

// reconcileStoreWait is how long `paybridge reconcile` waits for the store's lock: a running
// serve holds it for its whole life, so waiting longer only delays the explanation.
const reconcileStoreWait = time.Second

// exitError is an error main ends the process with a given exit code for.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode is the process exit code for run's error: 0 for none or a --help, an exitError's
// code, else 1.
func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	return 1
}

// runReconcile is `paybridge reconcile --config F [--since 24h] [--json]`: every attempt of the
// sessions created since whose VCC result disagrees with the session, one line each.
func runReconcile(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	flags := newFlags("reconcile", stderr)
	cfgPath := flags.String("config", "", "configuration file (YAML), the one serve runs with")
	since := flags.Duration("since", reconcileWindow, "look at sessions created this long ago or later")
	asJSON := flags.Bool("json", false, "print the discrepancies as a JSON array instead of lines")
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), `Usage: paybridge reconcile --config F [--since 24h] [--json]

Lists every attempt whose VCC result disagrees with its session: paid at VCC but not succeeded
here (paid_not_recorded), succeeded here but not paid at VCC (recorded_not_paid), paid on two
attempts (paid_twice), or failed because the result could not be verified (unverified).
VCC is asked only about attempts it still keeps (15 minutes after they end).

With the single-node store (bbolt under dataDir) it needs the store to itself: stop serve first,
or read paybridge_reconcile_discrepancies on /metrics and the error log, which serve keeps
current every 5 minutes. With store.url (PostgreSQL) it runs beside the serving nodes.

Exit status: 0 no discrepancies, 3 discrepancies found, 1 the reconciliation could not run.

Flags:
`)
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return err
	}
	if err := noArgs(flags); err != nil {
		return err
	}
	if *since <= 0 {
		return errors.New("reconcile: --since must be positive (such as 24h)")
	}
	cfg, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.Log.Format, slog.LevelWarn) // the report is on stdout; only trouble on stderr

	path := filepath.Join(cfg.DataDir, "paybridge.db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && !cfg.Store.Shared() {
		// Opening would create an empty store (and a master key): say what is wrong instead.
		return fmt.Errorf("reconcile: no store at %s: is dataDir the one serve runs with?", path)
	}
	// On PostgreSQL (store.url) it runs beside the serving nodes.
	store, err := openStore(ctx, cfg, logger, reconcileStoreWait)
	if errors.Is(err, boltstore.ErrLocked) {
		return fmt.Errorf("reconcile: the store %s is in use by a running paybridge: stop it and run reconcile again, "+
			"or read paybridge_reconcile_discrepancies on its /metrics and its error log, which it keeps current", path)
	}
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	defer store.Close()
	master, err := masterKey(cfg)
	if err != nil {
		return err
	}
	keyring, err := bridge.NewKeyring(master)
	if err != nil {
		return err
	}
	merchants := bridge.StaticMerchants(cfg.BridgeMerchants())
	// Nobody listens to this hub: reconciling changes no session and pushes nothing.
	svc, err := newSessionService(cfg, store, merchants, bridge.NewHub(logger, 0), keyring, bridge.SystemClock{}, logger, nil)
	if err != nil {
		return err
	}

	found, rerr := svc.Reconcile(ctx, time.Now().Add(-*since))
	if *asJSON {
		if found == nil {
			found = []bridge.Discrepancy{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(found); err != nil {
			return err
		}
	} else {
		for _, d := range found {
			fmt.Fprintln(stdout, formatDiscrepancy(d))
		}
		if len(found) == 0 && rerr == nil {
			fmt.Fprintln(stdout, "no discrepancies")
		}
	}
	switch {
	case rerr != nil:
		// What was found before the failure is printed, but the report is not complete.
		return &exitError{code: exitReconcileError, err: fmt.Errorf("reconcile: incomplete, %d discrepancies before: %w", len(found), rerr)}
	case len(found) > 0:
		return &exitError{code: exitReconcileFound, err: fmt.Errorf("reconcile: %d discrepancies since %s: check each payment with the back office", len(found), *since)}
	}
	return nil
}

// formatDiscrepancy is one line of the report: identifiers, status and amount, nothing secret.
func formatDiscrepancy(d bridge.Discrepancy) string {
	decision := d.Decision
	if decision == "" {
		decision = "-"
	}
	return fmt.Sprintf("%s session=%s merchant=%s mode=%s status=%s attempt=%d vccSessionGuid=%s decision=%s amount=%d currency=%s created=%s",
		d.Kind, d.SessionID, d.MerchantID, d.Mode, d.Status, d.Attempt, d.SessionGUID, decision, d.Amount, d.Currency,
		d.CreatedAt.UTC().Format(time.RFC3339))
}
