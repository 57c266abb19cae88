package bridge

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// KeyType says what an API key may do.
type KeyType string

// Key types.
const (
	KeySecret      KeyType = "secret"      // vp_sk_: every endpoint, server side only
	KeyPublishable KeyType = "publishable" // vp_pk_: browser endpoints only
)

// Mode separates test objects from live ones; a key of one mode never sees the other's objects.
type Mode string

// Modes.
const (
	ModeTest Mode = "test"
	ModeLive Mode = "live"
)

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool { return m == ModeTest || m == ModeLive }

// Valid reports whether t is a known key type.
func (t KeyType) Valid() bool { return t == KeySecret || t == KeyPublishable }

// minKeyRandom is how many random base62 characters follow an API key's prefix.
const minKeyRandom = 24

// APIKey is the stored form of an API key: never the key itself, only its SHA-256 hash.
type APIKey struct {
	ID         string    `json:"id"` // key_..., public
	MerchantID string    `json:"merchantId"`
	Type       KeyType   `json:"type"`
	Mode       Mode      `json:"mode"`
	Hash       string    `json:"hash"`  // hex SHA-256 of the key
	Last4      string    `json:"last4"` // for display only
	CreatedAt  time.Time `json:"createdAt"`
	ExpiresAt  time.Time `json:"expiresAt,omitzero"` // set when rolled: end of the grace window
	RevokedAt  time.Time `json:"revokedAt,omitzero"`
	RolledTo   string    `json:"rolledTo,omitempty"` // id of the key that replaced this one
	RolledAt   time.Time `json:"rolledAt,omitzero"`  // when it was (first) rolled; zero for keys rolled before this field
}

// Usable returns nil if the key may be used at now, or the public error saying why not.
func (k *APIKey) Usable(now time.Time) error {
	switch {
	case !k.RevokedAt.IsZero() && !now.Before(k.RevokedAt):
		return Errorf(CodeAuthKeyExpired, "This API key was revoked.")
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return Errorf(CodeAuthKeyExpired, "This API key was %s and its grace window has ended (at %s).", k.rolledWhen(), stamp(k.ExpiresAt)).
			WithFix(k.successorFix("Use the key that replaced it"))
	}
	return nil
}

// rolledWhen is "rolled", with its time when the key records one.
func (k *APIKey) rolledWhen() string {
	if k.RolledAt.IsZero() {
		return "rolled"
	}
	return "rolled at " + stamp(k.RolledAt)
}

// successorFix is lead, naming the key that replaced k if known.
func (k *APIKey) successorFix(lead string) string {
	if k.RolledTo != "" {
		return lead + " (" + k.RolledTo + ")."
	}
	return lead + "."
}

// stamp formats t for public messages: UTC, to the second.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// KeyState is where a key is in its lifecycle, as `paybridge keys list` shows it.
type KeyState string

// Key states.
const (
	KeyActive  KeyState = "active"  // works and may manage keys (if secret)
	KeyRolled  KeyState = "rolled"  // replaced; works for ordinary calls until ExpiresAt
	KeyExpired KeyState = "expired" // rolled and its grace window is over
	KeyRevoked KeyState = "revoked" // ended at RevokedAt
)

// State returns k's lifecycle state at now.
func (k *APIKey) State(now time.Time) KeyState {
	switch {
	case !k.RevokedAt.IsZero() && !now.Before(k.RevokedAt):
		return KeyRevoked
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return KeyExpired
	case k.RolledTo != "" || !k.ExpiresAt.IsZero():
		return KeyRolled
	}
	return KeyActive
}

// Redacted returns the key's public prefix and its last four characters, never the secret part
// in between: vp_sk_test_…abcd. It is how operators tell keys apart.
func (k *APIKey) Redacted() string {
	prefix := "vp_sk_"
	if k.Type == KeyPublishable {
		prefix = "vp_pk_"
	}
	return prefix + string(k.Mode) + "_…" + k.Last4
}

// NewAPIKey makes a new key for a merchant and returns the plaintext, shown once, and the stored
// form.
func NewAPIKey(merchantID string, typ KeyType, mode Mode, now time.Time) (string, *APIKey) {
	prefix := "vp_sk_"
	if typ == KeyPublishable {
		prefix = "vp_pk_"
	}
	plain := prefix + string(mode) + "_" + RandomBase62(minKeyRandom+8)
	return plain, &APIKey{
		ID:         "key_" + RandomBase62(16),
		MerchantID: merchantID,
		Type:       typ,
		Mode:       mode,
		Hash:       HashSecret(plain),
		Last4:      plain[len(plain)-4:],
		CreatedAt:  now.UTC(),
	}
}

// ParseAPIKey reports the type and mode a key's prefix claims, and whether the key is well
// formed at all. It does not say whether the key exists.
func ParseAPIKey(s string) (KeyType, Mode, bool) {
	var typ KeyType
	switch {
	case strings.HasPrefix(s, "vp_sk_"):
		typ = KeySecret
	case strings.HasPrefix(s, "vp_pk_"):
		typ = KeyPublishable
	default:
		return "", "", false
	}
	rest := s[len("vp_sk_"):]
	var mode Mode
	switch {
	case strings.HasPrefix(rest, "test_"):
		mode = ModeTest
	case strings.HasPrefix(rest, "live_"):
		mode = ModeLive
	default:
		return "", "", false
	}
	random := rest[len("test_"):]
	if len(random) < minKeyRandom || len(random) > 128 || !isBase62(random) {
		return "", "", false
	}
	return typ, mode, true
}

// HashSecret returns the hex SHA-256 of s, the form in which keys are stored and looked up.
func HashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// RandomBase62 returns n characters drawn uniformly from [0-9A-Za-z] by crypto/rand.
func RandomBase62(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		_, _ = rand.Read(buf) // crypto/rand.Read never fails on supported platforms
		for _, b := range buf {
			// 248 = 4*62: rejecting larger bytes keeps the distribution uniform.
			if b < 248 && len(out) < n {
				out = append(out, base62[b%62])
			}
		}
	}
	return string(out)
}

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}
