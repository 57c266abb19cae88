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

// TestCommandOutputEndsWithNewline: what paybridge prints for people ends with a newline, so the
// shell prompt starts on its own line: the commands' output and the demo's banner.
func TestCommandOutputEndsWithNewline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "example.yaml")
	require.NoError(t, os.WriteFile(path, []byte(config.Example()), 0o600))
	vars := map[string]string{"ACME_VCC_SECRET": "s", "ACME_WEBHOOK_SECRET": "whsec_x", "ACME_VCC_WEBHOOK_SECRET": "v"}
	getenv := func(k string) string { return vars[k] }
	for _, args := range [][]string{{"version"}, {"help"}, {"check", "--offline", "--config", path}} {
		var out bytes.Buffer
		require.NoError(t, run(context.Background(), append([]string{"paybridge"}, args...), getenv, &out, &bytes.Buffer{}), "%v", args)
		require.NotEmpty(t, out.String(), "%v", args)
		assert.True(t, strings.HasSuffix(out.String(), "\n"), "%v: %q", args, out.String())
	}

	var banner bytes.Buffer
	printDemoBanner(&banner, demoInfo{BaseURL: "http://127.0.0.1:8080", VCCStubURL: "http://127.0.0.1:8090"}, false)
	assert.True(t, strings.HasSuffix(banner.String(), "\n"))
}
