// Command paybridge runs the contact-centre PCI payment bridge, its demo and its upstream stubs.
//
//	paybridge demo  [--addr A] [--data DIR] [--info FILE]   stubs + bridge + agent desktop on loopback, no config
//	paybridge serve --config FILE                             the bridge against real (or stub) upstreams
//	paybridge stubs [--addr A]                                the VCC and PCI Pal stubs alone
//	paybridge keys create|list|revoke --config F ...          API keys, beside a running serve too
//	paybridge backup --config F --out FILE [--force]          a consistent hot copy of the bbolt store
//	paybridge check --config FILE                             validate a config, try VCC credentials
//	paybridge reconcile --config FILE [--since 24h] [--json]  attempts whose VCC result disagrees with paybridge
//	paybridge listen --forward-to URL [--api URL]             forward the merchant's events, signed, to a local URL
//	paybridge version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise the module's.
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "paybridge: %v\n", err)
		}
		os.Exit(exitCode(err))
	}
}

const usage = `paybridge: a PCI payment bridge between Vonage Contact Center and agent desktops.

Usage:
  paybridge demo  [--addr 127.0.0.1:8080] [--data DIR | --store URL] [--info FILE] [--stub-addr A] [--poll-interval D]
                  [--announce] [--provider-lifetime D] [--vcc-webhook=false] [--verbose]
  paybridge serve --config paybridge.yaml
  paybridge stubs [--addr 127.0.0.1:8090]
  paybridge keys create --config F --merchant M --type secret|publishable --mode test|live
  paybridge keys list --config F [--merchant M] [--mode test|live] [--json]
  paybridge keys revoke --config F ID
  paybridge keys roll --config F [--grace 24h] ID
  paybridge backup --config F --out FILE [--force]
  paybridge check --config paybridge.yaml
  paybridge reconcile --config paybridge.yaml [--since 24h] [--json]
  paybridge listen --forward-to URL [--api URL | --config F] [--api-key vp_sk_...] [--since-event vp_evt_...]
  paybridge version

Run "paybridge <command> --help" for a command's flags.
`

// run is the whole program, with its environment passed in so tests can run it in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "serve":
		return runServe(ctx, rest, getenv, stderr)
	case "stubs":
		return runStubs(ctx, rest, stdout, stderr)
	case "keys":
		return runKeys(ctx, rest, getenv, stdout, stderr)
	case "backup":
		return runBackup(ctx, rest, getenv, stdout, stderr)
	case "check":
		return runCheck(ctx, rest, getenv, stdout, stderr)
	case "reconcile":
		return runReconcile(ctx, rest, getenv, stdout, stderr)
	case "listen":
		return runListen(ctx, rest, getenv, stdout, stderr)
	case "version", "--version":
		info, _ := debug.ReadBuildInfo()
		fmt.Fprintln(stdout, versionLine(version, info))
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// moduleVersion is the version alone: -X main.version, else the module's, else "(devel)".
func moduleVersion(ldVersion string, info *debug.BuildInfo) string {
	if ldVersion != "" {
		return ldVersion
	}
	if info != nil && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}

// versionLine is what `paybridge version` prints: "paybridge <version> (<commit>[+dirty],
// <commit time>) <go version>" when the build recorded its VCS state (go build in a git
// checkout does), and says so when it did not (a build from a source tree without .git, such
// as the Docker build context, or -buildvcs=false) rather than leave the commit out silently.
func versionLine(ldVersion string, info *debug.BuildInfo) string {
	v := moduleVersion(ldVersion, info)
	if info == nil {
		return "paybridge " + v + " (no build information)"
	}
	var revision, when, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision == "" {
		return fmt.Sprintf("paybridge %s (no VCS information in this build) %s", v, info.GoVersion)
	}
	commit := revision[:min(len(revision), 12)]
	if modified == "true" {
		commit += "+dirty" // built with uncommitted changes: the commit alone does not say what ran
	}
	if when != "" {
		commit += ", " + when
	}
	return fmt.Sprintf("paybridge %s (%s) %s", v, commit, info.GoVersion)
}

// newFlags returns a flag set for one command that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("paybridge "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// noArgs rejects positional arguments a command does not take.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}
