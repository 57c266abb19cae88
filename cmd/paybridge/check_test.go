package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/config"
)

// TestCheck: `paybridge check` validates a file and tries each merchant's VCC credentials
// against the (stub) token endpoint, telling the operator what to fix, never the secret.
func TestCheck(t *testing.T) {
	w := newWorld(t, "", "")
	var out, errOut bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"paybridge", "check", "--config", w.cfgPath}, os.Getenv, &out, &errOut))
	assert.Contains(t, out.String(), "valid, 1 merchant(s)")
	assert.Contains(t, out.String(), "merchant acme: VCC credentials ok")

	t.Setenv("ACME_VCC_SECRET", "not-the-secret")
	out.Reset()
	err := run(context.Background(), []string{"paybridge", "check", "--config", w.cfgPath}, os.Getenv, &out, &errOut)
	require.ErrorContains(t, err, "1 merchant(s) failed")
	assert.Contains(t, out.String(), "merchant_not_configured")
	assert.Contains(t, out.String(), "API Admin", "the fix names where the credentials come from")
	assert.NotContains(t, out.String(), "not-the-secret")

	out.Reset()
	require.NoError(t, run(context.Background(), []string{"paybridge", "check", "--offline", "--config", w.cfgPath}, os.Getenv, &out, &errOut))
	assert.NotContains(t, out.String(), "VCC credentials")
}

// TestCheckNamesTheBadKey: a broken file is refused with the exact key path.
func TestCheckNamesTheBadKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(path, []byte("provider: {maxAttempts: 0}\nmerchants:\n  - id: acme\n    vcc: {tokenUrl: not-a-url}\n"), 0o600))
	err := run(context.Background(), []string{"paybridge", "check", "--offline", "--config", path}, os.Getenv, &bytes.Buffer{}, &bytes.Buffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "provider.maxAttempts")
	assert.Contains(t, err.Error(), "merchants[0].vcc.tokenUrl")
}

// TestExampleConfigChecks: the documented example passes check --offline once its variables are
// set, so the README's pointer to it is true.
func TestExampleConfigChecks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "example.yaml")
	require.NoError(t, os.WriteFile(path, []byte(config.Example()), 0o600))
	env := map[string]string{"ACME_VCC_SECRET": "s", "ACME_WEBHOOK_SECRET": "whsec_x", "ACME_VCC_WEBHOOK_SECRET": "v"}
	var out bytes.Buffer
	err := run(context.Background(), []string{"paybridge", "check", "--offline", "--config", path},
		func(k string) string { return env[k] }, &out, &bytes.Buffer{})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(out.String(), path+": valid"))
}
