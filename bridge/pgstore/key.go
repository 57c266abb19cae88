package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paybridge/paybridge/bridge"
)

// Queries of API keys.
const (
	sqlKey       = `SELECT doc FROM api_keys WHERE id = $1`
	sqlKeyLock   = `SELECT doc FROM api_keys WHERE id = $1 FOR UPDATE`
	sqlKeyByHash = `SELECT doc FROM api_keys WHERE hash = $1`
	sqlListKeys  = `SELECT doc FROM api_keys WHERE merchant_id = $1 ORDER BY created_ns, id`
	sqlInsertKey = `INSERT INTO api_keys (id, hash, merchant_id, created_ns, doc) VALUES ($1, $2, $3, $4, $5)`
	sqlUpdateKey = `UPDATE api_keys SET hash = $2, merchant_id = $3, created_ns = $4, doc = $5 WHERE id = $1`

	sqlAgentTokenEpoch = `SELECT epoch FROM agent_tokens WHERE merchant_id = $1 AND mode = $2 AND agent_id = $3`
	// One statement: the row is created at epoch 1 or moved on by one under its lock, so two
	// nodes revoking at once each move it.
	sqlRevokeAgentTokens = `INSERT INTO agent_tokens (merchant_id, mode, agent_id, epoch, revoked_ns) VALUES ($1, $2, $3, 1, $4)
		ON CONFLICT (merchant_id, mode, agent_id) DO UPDATE SET epoch = agent_tokens.epoch + 1, revoked_ns = EXCLUDED.revoked_ns
		RETURNING epoch`
)

// CreateAPIKey implements bridge.KeyStore.
func (s *Store) CreateAPIKey(ctx context.Context, k *bridge.APIKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	args, err := keyArgs(k)
	if err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, sqlInsertKey, args...); err != nil {
		return writeErr("create api key "+k.ID, err)
	}
	return nil
}

// APIKey implements bridge.KeyStore.
func (s *Store) APIKey(ctx context.Context, id string) (*bridge.APIKey, error) {
	return getDoc[bridge.APIKey](ctx, s.pool, "api key", id, sqlKey, id)
}

// APIKeyByHash implements bridge.KeyStore.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (*bridge.APIKey, error) {
	// The hash is not secret, but there is no reason to repeat it in an error either.
	return getDoc[bridge.APIKey](ctx, s.pool, "api key", "with that hash", sqlKeyByHash, hash)
}

// UpdateAPIKey implements bridge.KeyStore. fn runs once, under the row's lock, on a private
// copy; an error from fn is returned unchanged and nothing is written.
func (s *Store) UpdateAPIKey(ctx context.Context, id string, fn func(*bridge.APIKey) error) (*bridge.APIKey, error) {
	var updated *bridge.APIKey
	err := s.tx(ctx, func(tx pgx.Tx) error {
		old, next, err := lockDoc[bridge.APIKey](ctx, tx, "api key", id, sqlKeyLock)
		if err != nil {
			return err
		}
		if err := fn(next); err != nil {
			return err
		}
		if next.ID != old.ID {
			return fmt.Errorf("pgstore: an update may not change an api key's id (%s to %s)", old.ID, next.ID)
		}
		args, err := keyArgs(next)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sqlUpdateKey, args...); err != nil {
			return writeErr("update api key "+id, err)
		}
		updated = next
		return nil
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// ListAPIKeys implements bridge.KeyStore: oldest first, ties by id.
func (s *Store) ListAPIKeys(ctx context.Context, merchantID string) ([]*bridge.APIKey, error) {
	return listDocs[bridge.APIKey](ctx, s.pool, "api key", sqlListKeys, merchantID)
}

// keyArgs checks k and returns the arguments of sqlInsertKey and sqlUpdateKey.
func keyArgs(k *bridge.APIKey) ([]any, error) {
	switch {
	case k.ID == "":
		return nil, errors.New("pgstore: api key has no id")
	case k.Hash == "":
		return nil, fmt.Errorf("pgstore: api key %s has no hash", k.ID)
	}
	doc, err := encode("api key", k.ID, k)
	if err != nil {
		return nil, err
	}
	return []any{k.ID, k.Hash, k.MerchantID, nanos(k.CreatedAt), string(doc)}, nil
}

// AgentTokenEpoch implements bridge.KeyStore.
func (s *Store) AgentTokenEpoch(ctx context.Context, agent bridge.AgentRef) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var epoch int64
	err := s.pool.QueryRow(ctx, sqlAgentTokenEpoch, agent.MerchantID, string(agent.Mode), agent.AgentID).Scan(&epoch)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("pgstore: read agent token epoch: %w", err)
	}
	return epoch, nil
}

// RevokeAgentTokens implements bridge.KeyStore.
func (s *Store) RevokeAgentTokens(ctx context.Context, agent bridge.AgentRef, at time.Time) (*bridge.AgentTokenRevocation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var epoch int64
	if err := s.pool.QueryRow(ctx, sqlRevokeAgentTokens, agent.MerchantID, string(agent.Mode), agent.AgentID, nanos(at)).Scan(&epoch); err != nil {
		return nil, writeErr("revoke agent tokens", err)
	}
	return &bridge.AgentTokenRevocation{Agent: agent, Epoch: epoch, RevokedAt: at.UTC()}, nil
}
