package boltstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paybridge/paybridge/bridge"
)

// keys is the table of API keys; the hash index follows each write.
var keys = table[bridge.APIKey]{bucket: bucketKeys, kind: "api key",
	id: func(k *bridge.APIKey) string { return k.ID }, valid: validKey, put: putKey}

// CreateAPIKey implements bridge.KeyStore.
func (s *Store) CreateAPIKey(ctx context.Context, k *bridge.APIKey) error {
	return s.update(ctx, func(tx *bolt.Tx) error { return keys.create(tx, k) })
}

// APIKey implements bridge.KeyStore.
func (s *Store) APIKey(ctx context.Context, id string) (*bridge.APIKey, error) {
	return keys.read(s, ctx, id)
}

// APIKeyByHash implements bridge.KeyStore.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (*bridge.APIKey, error) {
	var k *bridge.APIKey
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		id := tx.Bucket(bucketKeyHash).Get([]byte(hash))
		if hash == "" || id == nil {
			// The hash is not secret, but there is no reason to repeat it either.
			return fmt.Errorf("boltstore: no api key has that hash: %w", bridge.ErrNotFound)
		}
		k, err = keys.get(tx, string(id))
		return err
	})
	return k, err
}

// UpdateAPIKey implements bridge.KeyStore. fn runs inside the write transaction on a private
// copy, a fresh one each time should the group commit rerun it (see UpdateSession); an error from
// fn is returned unchanged and nothing is written.
func (s *Store) UpdateAPIKey(ctx context.Context, id string, fn func(*bridge.APIKey) error) (*bridge.APIKey, error) {
	return keys.update(s, ctx, id, fn)
}

// ListAPIKeys implements bridge.KeyStore: oldest first, ties by id. It scans every key; a
// deployment has few.
func (s *Store) ListAPIKeys(ctx context.Context, merchantID string) ([]*bridge.APIKey, error) {
	var list []*bridge.APIKey
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeys).ForEach(func(id, _ []byte) error {
			k, err := keys.get(tx, string(id))
			if err != nil {
				return err
			}
			if k.MerchantID == merchantID {
				list = append(list, k)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b *bridge.APIKey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return list, nil
}

// bucketAgentTokens holds each agent's token revocation record (merchant \0 mode \0 agent → JSON
// bridge.AgentTokenRevocation). It is created by the first revocation, so files written before it
// existed need no migration, and a paybridge that does not know it leaves it alone.
var bucketAgentTokens = []byte("agent_tokens")

// agentKey is agent's key in bucketAgentTokens; NUL cannot occur in any of its parts.
func agentKey(agent bridge.AgentRef) []byte {
	return []byte(agent.MerchantID + "\x00" + string(agent.Mode) + "\x00" + agent.AgentID)
}

// AgentTokenEpoch implements bridge.KeyStore.
func (s *Store) AgentTokenEpoch(ctx context.Context, agent bridge.AgentRef) (int64, error) {
	var epoch int64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketAgentTokens) == nil {
			return nil
		}
		var rec bridge.AgentTokenRevocation
		ok, err := getJSON(tx, bucketAgentTokens, agentKey(agent), &rec)
		if ok && err == nil {
			epoch = rec.Epoch
		}
		return err
	})
	return epoch, err
}

// RevokeAgentTokens implements bridge.KeyStore.
func (s *Store) RevokeAgentTokens(ctx context.Context, agent bridge.AgentRef, at time.Time) (*bridge.AgentTokenRevocation, error) {
	var rec *bridge.AgentTokenRevocation
	err := s.update(ctx, func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketAgentTokens); err != nil {
			return err
		}
		// Fresh on every run: the group commit may rerun this function.
		rec = &bridge.AgentTokenRevocation{Agent: agent}
		if _, err := getJSON(tx, bucketAgentTokens, agentKey(agent), rec); err != nil {
			return err
		}
		rec.Agent, rec.Epoch, rec.RevokedAt = agent, rec.Epoch+1, at.UTC()
		return putJSON(tx, bucketAgentTokens, agentKey(agent), rec)
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// validKey checks what the indexes rely on.
func validKey(k *bridge.APIKey) error {
	switch {
	case k.ID == "":
		return errors.New("boltstore: api key has no id")
	case k.Hash == "":
		return fmt.Errorf("boltstore: api key %s has no hash", k.ID)
	}
	return nil
}

// putKey writes next and moves the hash index from old (nil for a new key) to next.
func putKey(tx *bolt.Tx, old, next *bridge.APIKey) error {
	hashes := tx.Bucket(bucketKeyHash)
	if owner := hashes.Get([]byte(next.Hash)); owner != nil && string(owner) != next.ID {
		return fmt.Errorf("boltstore: api key %s: another key has the same hash: %w", next.ID, bridge.ErrConflict)
	}
	if old != nil && old.Hash != next.Hash {
		if err := hashes.Delete([]byte(old.Hash)); err != nil {
			return err
		}
	}
	if err := hashes.Put([]byte(next.Hash), []byte(next.ID)); err != nil {
		return err
	}
	return putJSON(tx, bucketKeys, []byte(next.ID), next)
}
