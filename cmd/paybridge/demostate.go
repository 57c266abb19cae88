package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/paybridge/paybridge/bridge"
)

// demoStateFile is the file under --data that lets a later demo run reuse this one's keys and
// webhook secret. It is sealed with the master key: API keys are stored only as hashes, so the
// demo cannot look its own keys up again, and nothing secret lies in clear at rest.
const demoStateFile = "demo-state.sealed"

// demoStateAD binds the sealed state to its use: no other sealed value opens as it.
var demoStateAD = []byte("paybridge demo state v1")

// demoState is what the demo keeps across runs with the same --data.
type demoState struct {
	SecretKey      string `json:"secretKey"`
	PublishableKey string `json:"publishableKey"`
	WebhookSecret  string `json:"webhookSecret"`
}

// loadDemoState reads the state sealed in dir. A missing file is the zero state; a file that
// does not open (another master key, or damaged) is an error that names it.
func loadDemoState(dir string, keyring *bridge.Keyring) (demoState, error) {
	path := filepath.Join(dir, demoStateFile)
	sealed, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return demoState{}, nil
	}
	if err != nil {
		return demoState{}, err
	}
	plain, err := keyring.Open(sealed, demoStateAD)
	if err != nil {
		return demoState{}, fmt.Errorf("%s does not open with this master key (delete it to start with new keys): %w", path, err)
	}
	var st demoState
	if err := json.Unmarshal(plain, &st); err != nil {
		return demoState{}, fmt.Errorf("%s is not the demo's state (delete it to start with new keys)", path)
	}
	return st, nil
}

// saveDemoState seals st into dir atomically, readable by its owner only.
func saveDemoState(dir string, keyring *bridge.Keyring, st demoState) error {
	plain, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".demo-state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(keyring.Seal(plain, demoStateAD)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, demoStateFile))
}

// ensureDemoKeys makes st hold a usable test secret key and publishable key of merchant: the ones
// it holds if they still work (not revoked, not rolled), new ones otherwise. It reports whether
// both were reused.
func ensureDemoKeys(ctx context.Context, keys *bridge.KeyService, merchant string, st *demoState) (reused bool, err error) {
	reused = true
	for _, k := range []struct {
		typ bridge.KeyType
		key *string
	}{{bridge.KeySecret, &st.SecretKey}, {bridge.KeyPublishable, &st.PublishableKey}} {
		if usableDemoKey(ctx, keys, merchant, k.typ, *k.key) {
			continue
		}
		reused = false
		if *k.key, _, err = keys.CreateKey(ctx, merchant, k.typ, bridge.ModeTest); err != nil {
			return false, err
		}
	}
	return reused, nil
}

// usableDemoKey reports whether key is a working, unrolled test key of type typ of merchant.
func usableDemoKey(ctx context.Context, keys *bridge.KeyService, merchant string, typ bridge.KeyType, key string) bool {
	if key == "" {
		return false
	}
	p, err := keys.Authenticate(ctx, key)
	return err == nil && p.Merchant.ID == merchant && p.Key.Type == typ && p.Key.Mode == bridge.ModeTest && p.Key.ExpiresAt.IsZero()
}
