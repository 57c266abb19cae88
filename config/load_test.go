package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/config"
)

// load writes doc to a file named paybridge.yaml and loads it, returning the file's path.
func load(t *testing.T, doc string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "paybridge.yaml")
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
	_, err := config.Load(path, env(nil))
	return path, err
}

// TestLoadNamesFileAndLine: every problem in a file says file:line as compilers do, at the line
// where it is, whether the YAML does not parse, a value has the wrong type, a key is unknown, or
// a value fails validation.
func TestLoadNamesFileAndLine(t *testing.T) {
	for _, tt := range []struct {
		name, doc string
		want      []string // after "<file>:"
	}{
		{"wrong type", minimal + "provider:\n  sessionLifetime: 15m\n  maxAttempts: many\n",
			[]string{"10: provider.maxAttempts: must be a whole number"}},
		{"wrong type in a merchant", "merchants:\n  - id: acme\n    vcc:\n      accountConfigurationIds: [1, two]\n",
			[]string{"4: merchants[0].vcc.accountConfigurationIds[1]: must be a whole number"}},
		{"over-indented key", "listen: 127.0.0.1:8080\nprovider:\n  maxAttempts: 3\n   pollInterval: 2s\n",
			[]string{"4: YAML: mapping values are not allowed in this context"}},
		{"tab indentation", "listen: 127.0.0.1:8080\nprovider:\n\tmaxAttempts: 3\n",
			[]string{"3: YAML: found character that cannot start any token"}},
		// yaml.v3 itself says line 3 (the list item, counted from 0) for these two.
		{"unclosed flow list", "listen: 127.0.0.1:8080\nmerchants:\n  - id: acme\n    allowedOrigins: [https://a.example, https://b.example\n    status: active\n",
			[]string{"4: YAML: did not find expected ',' or ']'"}},
		{"list item out of line", "merchants:\n  - id: a\n  name: b\n",
			[]string{"3: YAML: did not find expected '-' indicator"}},
		{"unclosed quote", "listen: 127.0.0.1:8080\npublicBaseUrl: \"https://pay.example\ndataDir: ./data\n",
			[]string{"2: YAML: found unexpected end of stream"}},
		{"second document", minimal + "---\nlisten: 127.0.0.1:1\n",
			[]string{"8: a second YAML document; the file must hold one"}},
		{"unknown key, top level", "listn: 127.0.0.1:8080\n" + minimal,
			[]string{`1: listn: unknown key; did you mean "listen"?`}},
		{"validation, at its key", minimal + "provider:\n  maxAttempts: 0\n",
			[]string{"9: provider.maxAttempts: must be between 1 and 20, got 0"}},
		{"validation of a missing key, at its list item", "merchants:\n  - name: Acme\n    vcc: {region: emea, clientId: a, clientSecret: b}\n",
			[]string{"2: merchants[0].id: required"}},
		{"validation of a map entry", minimal + "      accountConfigurationIds: [1]\n      gateways:\n        7: {profile: cybersource}\n",
			[]string{"10: merchants[0].vcc.gateways[7]: 7 is not one of accountConfigurationIds [1]"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path, err := load(t, tt.doc)
			require.Error(t, err)
			var want []string
			for _, w := range tt.want {
				want = append(want, path+":"+w)
			}
			assert.Equal(t, want, problems(err))
			var fe *config.FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, path, fe.File)
		})
	}
}

// TestLoadLineOfWhatTheFileLeavesOut: a problem with a key the file leaves out is at its
// section's line when the file has the section, and names the file only when it has neither.
func TestLoadLineOfWhatTheFileLeavesOut(t *testing.T) {
	path, err := load(t, minimal+"agentTokens: {maxTTL: 30m}\n")
	require.Error(t, err)
	assert.Equal(t, []string{path + ":8: agentTokens.defaultTTL: must not exceed agentTokens.maxTTL (30m), got 1h"}, problems(err))

	require.NoError(t, os.WriteFile(path, []byte(minimal), 0o600))
	_, err = config.Load(path, env(map[string]string{config.EnvStoreURL: "postgres://paybridge@db.internal/paybridge"}))
	require.Error(t, err)
	assert.Equal(t, []string{path + ": masterKey: must be set when store.url is: every node sharing the database needs the same master key (or PAYBRIDGE_MASTER_KEY)"}, problems(err))
}

// TestUnknownKeySuggestions: an unknown key suggests the closest known key of its own mapping,
// at any depth (through lists, maps and optional sections), and nothing when no key is close.
func TestUnknownKeySuggestions(t *testing.T) {
	for _, tt := range []struct {
		name, doc, want string
	}{
		{"top level", "listn: 127.0.0.1:8080\n", `line 1: listn: unknown key; did you mean "listen"?`},
		{"swapped letters", "provider:\n  maxAtetmpts: 3\n", `line 2: provider.maxAtetmpts: unknown key; did you mean "maxAttempts"?`},
		{"case slip", "rateLimits: {perip: 5}\n", `line 1: rateLimits.perip: unknown key; did you mean "perIP"?`},
		{"in a merchant", "merchants:\n  - id: a\n    allowedOrigin: [https://a.example]\n",
			`line 3: merchants[0].allowedOrigin: unknown key; did you mean "allowedOrigins"?`},
		{"in a merchant's vcc", "merchants:\n  - id: a\n    vcc:\n      clientSecrt: x\n",
			`line 4: merchants[0].vcc.clientSecrt: unknown key; did you mean "clientSecret"?`},
		{"in a gateway of the map", "merchants:\n  - id: a\n    vcc:\n      gateways:\n        2: {profle: custom}\n",
			`line 5: merchants[0].vcc.gateways[2].profle: unknown key; did you mean "profile"?`},
		{"deep in paymentData", "merchants:\n  - id: a\n    vcc:\n      gateway:\n        paymentData: {amout: Amount}\n",
			`line 5: merchants[0].vcc.gateway.paymentData.amout: unknown key; did you mean "amount"?`},
		{"in an optional section", "merchants:\n  - id: a\n    frameAnnouncement: {orign: 'https://x.example'}\n",
			`line 3: merchants[0].frameAnnouncement.orign: unknown key; did you mean "origin"?`},
		{"nothing close", "merchants:\n  - id: a\n    title: A\n", "line 3: merchants[0].title: unknown key"},
		{"a different word", "log: {colour: true}\n", "line 1: log.colour: unknown key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.doc), env(nil))
			assert.Equal(t, []string{tt.want}, problems(err))
		})
	}
}
