package boltstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/paybridge/paybridge/bridge"
)

// CreateAPIKey implements bridge.KeyStore.
func (s *Store) CreateAPIKey(ctx context.Context, k *bridge.APIKey) error {
	if err := validKey(k); err != nil {
		return err
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketKeys).Get([]byte(k.ID)) != nil {
			return fmt.Errorf("boltstore: api key %s exists: %w", k.ID, bridge.ErrConflict)
		}
		return putKey(tx, nil, k)
	})
}

// APIKey implements bridge.KeyStore.
func (s *Store) APIKey(ctx context.Context, id string) (*bridge.APIKey, error) {
	var k *bridge.APIKey
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		k, err = getKey(tx, id)
		return err
	})
	return k, err
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
		k, err = getKey(tx, string(id))
		return err
	})
	return k, err
}

// UpdateAPIKey implements bridge.KeyStore. fn runs once, inside the write transaction, on a
// private copy; an error from fn is returned unchanged and nothing is written.
func (s *Store) UpdateAPIKey(ctx context.Context, id string, fn func(*bridge.APIKey) error) (*bridge.APIKey, error) {
	var updated *bridge.APIKey
	err := s.update(ctx, func(tx *bolt.Tx) error {
		old, err := getKey(tx, id)
		if err != nil {
			return err
		}
		next, err := getKey(tx, id)
		if err != nil {
			return err
		}
		if err := fn(next); err != nil {
			return err
		}
		if next.ID != old.ID {
			return fmt.Errorf("boltstore: UpdateAPIKey may not change a key's id (%s to %s)", old.ID, next.ID)
		}
		if err := validKey(next); err != nil {
			return err
		}
		if err := putKey(tx, old, next); err != nil {
			return err
		}
		updated = next
		return nil
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// ListAPIKeys implements bridge.KeyStore: oldest first, ties by id. It scans every key; a
// deployment has few.
func (s *Store) ListAPIKeys(ctx context.Context, merchantID string) ([]*bridge.APIKey, error) {
	var list []*bridge.APIKey
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeys).ForEach(func(id, _ []byte) error {
			k, err := getKey(tx, string(id))
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

// getKey decodes the key with id, or returns ErrNotFound.
func getKey(tx *bolt.Tx, id string) (*bridge.APIKey, error) {
	var k bridge.APIKey
	ok, err := getJSON(tx, bucketKeys, []byte(id), &k)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("boltstore: api key %s: %w", id, bridge.ErrNotFound)
	}
	return &k, nil
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
