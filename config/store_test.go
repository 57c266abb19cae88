package config_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/config"
)

func TestStoreConfig(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	for _, tt := range []struct {
		name    string
		file    string
		vars    map[string]string
		wantURL string
		wantErr string // "" for valid
	}{
		{name: "absent: bbolt", file: "", wantURL: ""},
		{name: "from the file", file: "masterKey: " + key + "\nstore: {url: 'postgres://pb:pw-1@db:5432/pb'}\n",
			wantURL: "postgres://pb:pw-1@db:5432/pb"},
		{name: "from the environment", file: "masterKey: " + key + "\n",
			vars: map[string]string{config.EnvStoreURL: "postgres://pb@db/pb"}, wantURL: "postgres://pb@db/pb"},
		{name: "environment wins", file: "masterKey: " + key + "\nstore: {url: 'postgres://file@db/pb'}\n",
			vars: map[string]string{config.EnvStoreURL: "postgres://env@db/pb"}, wantURL: "postgres://env@db/pb"},
		{name: "not postgres", file: "masterKey: " + key + "\nstore: {url: 'mysql://pb:pw-1@db/pb'}\n",
			wantErr: "store.url: must be a postgres:// URL"},
		{name: "no shared master key", file: "store: {url: 'postgres://pb:pw-1@db/pb'}\n",
			wantErr: "masterKey: must be set when store.url is"},
		{name: "lease too short", file: "masterKey: " + key + "\nstore: {url: 'postgres://db/pb', leaseTtl: 1s}\n",
			wantErr: "store.leaseTtl: must be between 3s and 5m"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.file), env(tt.vars))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.NotContains(t, err.Error(), "pw-1", "the URL's password is never quoted")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantURL, c.Store.URL)
			assert.Equal(t, tt.wantURL != "", c.Store.Shared())
			assert.Equal(t, 15*time.Second, c.Store.LeaseTTL, "the default lease")
		})
	}
}

func TestRedactedHidesTheStorePassword(t *testing.T) {
	for _, u := range []string{"postgres://pb:pw-secret@db:5432/pb", "postgres://db/pb?sslmode=require&password=pw-secret"} {
		c := config.Default()
		c.Store.URL = u
		r := c.Redacted()
		assert.NotContains(t, fmt.Sprintf("%+v", r), "pw-secret")
		assert.Contains(t, r.Store.URL, "db", "the host stays")
		assert.Equal(t, u, c.Store.URL, "the original is untouched")
	}
}
