package bridge_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

// TestReloadableMerchants: the directory answers the configured merchants; Settling also answers
// removed ones, as last configured, so their open sessions can settle; a merchant configured
// again is answered with its new configuration by both.
func TestReloadableMerchants(t *testing.T) {
	ctx := context.Background()
	acme := &bridge.Merchant{ID: "acme", Name: "Acme", AllowedOrigins: []string{"https://a.example"}}
	globex := &bridge.Merchant{ID: "globex", Name: "Globex"}
	dir := bridge.NewReloadableMerchants([]*bridge.Merchant{acme, globex})
	settling := dir.Settling()

	ids := func(d bridge.MerchantDirectory) []string {
		list, err := d.Merchants(ctx)
		require.NoError(t, err)
		var out []string
		for _, m := range list {
			out = append(out, m.ID)
		}
		return out
	}
	lookup := func(d bridge.MerchantDirectory, id string) (string, error) {
		m, err := d.Merchant(ctx, id)
		if err != nil {
			return "", err
		}
		return m.Name, nil
	}

	tests := []struct {
		name         string
		replace      []*bridge.Merchant
		wantIDs      []string
		wantAcme     string // "" = not found
		wantSettling string // Settling's answer for acme
	}{
		{"as configured", nil, []string{"acme", "globex"}, "Acme", "Acme"},
		{"acme removed", []*bridge.Merchant{globex}, []string{"globex"}, "", "Acme"},
		{"acme back, renamed", []*bridge.Merchant{globex, {ID: "acme", Name: "Acme Energy"}}, []string{"globex", "acme"}, "Acme Energy", "Acme Energy"},
		{"everything removed", []*bridge.Merchant{}, nil, "", "Acme Energy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.replace != nil {
				dir.Replace(tt.replace)
			}
			assert.Equal(t, tt.wantIDs, ids(dir))
			assert.Equal(t, tt.wantIDs, ids(settling), "Settling lists the configured merchants only")
			name, err := lookup(dir, "acme")
			if tt.wantAcme == "" {
				assert.ErrorIs(t, err, bridge.ErrNotFound)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.wantAcme, name)
			}
			name, err = lookup(settling, "acme")
			require.NoError(t, err)
			assert.Equal(t, tt.wantSettling, name)
			_, err = settling.Merchant(ctx, "never-configured")
			assert.ErrorIs(t, err, bridge.ErrNotFound)
		})
	}
}
