package bridgetest

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// RequireBrowserEnv, when set to 1 (scripts/test sets it), makes a missing Chromium fail the
// browser tests instead of skipping them, so CI cannot pass without running them.
const RequireBrowserEnv = "PAYBRIDGE_REQUIRE_BROWSER"

// Browser starts a headless Debian Chromium for t and returns a chromedp context for a new tab.
// Everything stops when t ends. Without Chromium the test is skipped, or fails under
// RequireBrowserEnv; -short skips it too. extra adds Chromium flags (a test's own certificate).
func Browser(t testing.TB, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv(RequireBrowserEnv) == "1" {
			t.Fatal("Chromium is not installed: run scripts/install-test-deps")
		}
		t.Skip("no Chromium found (scripts/install-test-deps installs it)")
	}
	// The flags keep Chromium off the network (this machine's network is closed; without them it
	// retries Google's hosts at every start) and usable as root.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()),
	)
	opts = append(opts, extra...)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}
