package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/paybridge/paybridge/bridge"
)

const keysUsage = `usage: paybridge keys create --config F --merchant M [--type secret|publishable] [--mode test|live]
       paybridge keys list   --config F [--merchant M] [--mode test|live] [--json]
       paybridge keys revoke --config F ID
       paybridge keys roll   --config F [--grace 24h] ID

While serve runs on bbolt these go through its admin socket (admin.socket, beside the store by
default; run them as the server's OS user); on PostgreSQL they use the database beside the nodes.
`

// runKeys is `paybridge keys create|list|revoke`.
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return errors.New("keys: a subcommand is required: create, list or revoke")
	}
	switch args[0] {
	case "create":
		return cliError(runKeysCreate(ctx, args[1:], getenv, stdout, stderr))
	case "list":
		return cliError(runKeysList(ctx, args[1:], getenv, stdout, stderr))
	case "revoke":
		return cliError(runKeysRevoke(ctx, args[1:], getenv, stdout, stderr))
	case "roll":
		return cliError(runKeysRoll(ctx, args[1:], getenv, stdout, stderr))
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	}
	fmt.Fprint(stderr, keysUsage)
	return fmt.Errorf("keys: unknown subcommand %q", args[0])
}

// keysFlags is a subcommand's flag set, whose --help shows the subcommand's synopsis first.
func keysFlags(name, synopsis string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := newFlags("keys "+name, stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: paybridge keys %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs, fs.String("config", "", "configuration file (YAML), the one serve runs with")
}

// runKeysCreate is `paybridge keys create`: a new API key, printed once.
func runKeysCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, cfgPath := keysFlags("create", "create --config F --merchant M [--type secret|publishable] [--mode test|live]", stderr)
	merchant := fs.String("merchant", "", "merchant id (required)")
	typ := fs.String("type", "secret", "secret or publishable")
	mode := fs.String("mode", "test", "test or live")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if *merchant == "" {
		return errors.New("keys create: --merchant is required")
	}
	ops, done, err := adminFor(ctx, *cfgPath, getenv)
	if err != nil {
		return err
	}
	defer done()
	k, err := ops.CreateKey(ctx, *merchant, bridge.KeyType(*typ), bridge.Mode(*mode))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", k.Plaintext)
	fmt.Fprintf(stderr, "created %s key %s for merchant %s (%s); it is shown once: store it now\n", k.Type, k.ID, k.Merchant, k.Mode)
	return nil
}

// runKeysList is `paybridge keys list`: every key's id, redacted form, state and times; never
// a secret.
func runKeysList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, cfgPath := keysFlags("list", "list --config F [--merchant M] [--mode test|live] [--json]", stderr)
	merchant := fs.String("merchant", "", "only this merchant's keys (default: every configured merchant)")
	mode := fs.String("mode", "", "only test or only live keys (default: both)")
	asJSON := fs.Bool("json", false, "print a JSON array instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	ops, done, err := adminFor(ctx, *cfgPath, getenv)
	if err != nil {
		return err
	}
	defer done()
	keys, err := ops.ListKeys(ctx, *merchant, bridge.Mode(*mode))
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(keys)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MERCHANT\tMODE\tTYPE\tID\tKEY\tCREATED\tSTATUS\tLAST USED")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Merchant, k.Mode, k.Type, k.ID, k.Key,
			k.CreatedAt.Format(time.RFC3339), statusText(k), lastUsedText(k))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if _, serving := ops.(*socketAdmin); !serving && len(keys) > 0 {
		fmt.Fprintln(stderr, "last use is known only while serve runs on bbolt (since it started); this list was read from the store")
	}
	return nil
}

// statusText is a key's state for the table: active, rolled (until when), or revoked (when).
func statusText(k *adminKey) string {
	switch k.Status {
	case bridge.KeyRolled:
		if k.ActiveUntil != nil {
			return "rolled-until " + k.ActiveUntil.Format(time.RFC3339)
		}
		return "rolled"
	case bridge.KeyExpired:
		if k.ActiveUntil != nil {
			return "rolled-ended " + k.ActiveUntil.Format(time.RFC3339)
		}
		return "rolled-ended"
	case bridge.KeyRevoked:
		if k.RevokedAt != nil {
			return "revoked " + k.RevokedAt.Format(time.RFC3339)
		}
	}
	return string(k.Status)
}

func lastUsedText(k *adminKey) string {
	if k.LastUsedAt == nil {
		return "-"
	}
	return k.LastUsedAt.Format(time.RFC3339)
}

// runKeysRevoke is `paybridge keys revoke ID`: the key ends at once (and the agent sockets it
// opened close, when a running server does it).
func runKeysRevoke(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, cfgPath := keysFlags("revoke", "revoke --config F ID", stderr)
	ids, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(ids) != 1 || !strings.HasPrefix(ids[0], "key_") {
		return errors.New("keys revoke: give exactly one key id (key_..., from paybridge keys list)")
	}
	ops, done, err := adminFor(ctx, *cfgPath, getenv)
	if err != nil {
		return err
	}
	defer done()
	k, err := ops.RevokeKey(ctx, ids[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked %s key %s (%s) of merchant %s (%s) at %s\n", k.Type, k.ID, k.Key, k.Merchant, k.Mode, k.RevokedAt.Format(time.RFC3339))
	return nil
}

// runKeysRoll is `paybridge keys roll ID`: a new key replaces ID, printed once; ID keeps working
// for the grace window, so callers can switch over.
func runKeysRoll(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, cfgPath := keysFlags("roll", "roll --config F [--grace 24h] ID", stderr)
	graceFlag := fs.String("grace", "", "how long the rolled key keeps working: a duration (0s ends it at once; default: the config's keys.rollGrace, 24h)")
	ids, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(ids) != 1 || !strings.HasPrefix(ids[0], "key_") {
		return errors.New("keys roll: give exactly one key id (key_..., from paybridge keys list)")
	}
	// The key service reads a grace of 0 as its default (keys.rollGrace): a roll that ends the
	// old key at once asks for the shortest grace there is.
	var grace time.Duration
	if *graceFlag != "" {
		d, err := time.ParseDuration(*graceFlag)
		switch {
		case err != nil:
			return fmt.Errorf("keys roll: --grace %q is not a duration (say 24h, 30m or 0s)", *graceFlag)
		case d < 0:
			return errors.New("keys roll: --grace cannot be negative")
		}
		grace = max(d, time.Nanosecond)
	}
	ops, done, err := adminFor(ctx, *cfgPath, getenv)
	if err != nil {
		return err
	}
	defer done()
	k, err := ops.RollKey(ctx, ids[0], grace)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", k.Plaintext)
	fmt.Fprintf(stderr, "rolled %s into %s key %s for merchant %s (%s); the old key keeps working until %s; the new one is shown once: store it now\n",
		ids[0], k.Type, k.ID, k.Merchant, k.Mode, k.PreviousUntil.Format(time.RFC3339))
	return nil
}

// adminFor loads the configuration and opens its admin.
func adminFor(ctx context.Context, cfgPath string, getenv func(string) string) (admin, func(), error) {
	cfg, err := loadConfig(cfgPath, getenv)
	if err != nil {
		return nil, nil, err
	}
	return openAdmin(ctx, cfg)
}

// parseInterleaved parses flags placed before or after the positional arguments, which it
// returns: `keys revoke key_x --config F` reads as well as `keys revoke --config F key_x`.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// cliError shows a paybridge error as the command line needs it: the message, its code, and
// the fix on its own line. The *bridge.Error stays in the chain.
func cliError(err error) error {
	var e *bridge.Error
	if !errors.As(err, &e) {
		return err
	}
	return &fixError{e: e}
}

type fixError struct{ e *bridge.Error }

func (f *fixError) Error() string {
	return fmt.Sprintf("%s (%s)\n  fix: %s", f.e.Message, f.e.Code, f.e.PublicFix())
}

func (f *fixError) Unwrap() error { return f.e }
