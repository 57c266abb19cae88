package bridge

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MinMasterKeyLen is the shortest master key a Keyring accepts.
const MinMasterKeyLen = 32

// Keyring holds the keys derived from paybridge's one master key: the HMAC key that signs agent
// tokens and the AES-256-GCM key that seals provider tokens at rest. Every node of a deployment
// must share the master key.
type Keyring struct {
	tokenMAC []byte
	aead     cipher.AEAD
}

// NewKeyring derives the keys from master, which must be at least MinMasterKeyLen random bytes.
func NewKeyring(master []byte) (*Keyring, error) {
	if len(master) < MinMasterKeyLen {
		return nil, fmt.Errorf("master key is %d bytes, need at least %d", len(master), MinMasterKeyLen)
	}
	block, err := aes.NewCipher(derive(master, "paybridge seal v1"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Keyring{tokenMAC: derive(master, "paybridge agent token v1"), aead: aead}, nil
}

// derive returns HMAC-SHA256(master, label): independent 32-byte keys for independent uses.
func derive(master []byte, label string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Seal encrypts plain with a random nonce; associated binds the ciphertext to its owner so it
// cannot be moved to another record.
func (k *Keyring) Seal(plain, associated []byte) []byte {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	_, _ = rand.Read(nonce)
	return k.aead.Seal(nonce, nonce, plain, associated)
}

// Open decrypts what Seal produced with the same associated data.
func (k *Keyring) Open(sealed, associated []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed value too short")
	}
	return k.aead.Open(nil, sealed[:n], sealed[n:], associated)
}

// AgentToken is what an agent token asserts: one agent of one merchant, in one mode, until
// ExpiresAt, minted by the secret key KeyID while the agent's token epoch was Epoch. The token
// stops working when that key does (revoked, or its roll grace over) and when the agent's tokens
// are revoked (the epoch moves past Epoch); KeyService checks both, the Keyring only the
// signature and the expiry.
type AgentToken struct {
	MerchantID string    `json:"m"`
	Mode       Mode      `json:"-"`
	AgentID    string    `json:"a"`
	ExpiresAt  time.Time `json:"-"`
	Expiry     int64     `json:"e"`
	KeyID      string    `json:"k"`           // the secret key that minted it
	ID         string    `json:"i"`           // random: two tokens are never the same
	Epoch      int64     `json:"g,omitempty"` // the agent's token epoch when it was minted

	// MintedBy is the key KeyID names, as KeyService.VerifyAgentToken found it; never encoded.
	MintedBy *APIKey `json:"-"`
}

const (
	agentTokenPrefix   = "vp_at_"
	webhookTokenPrefix = "vp_wt_"
	maxTokenLen        = 2048
	agentTokenIDLen    = 16
)

// IssueAgentToken returns a signed token asserting t (MerchantID, Mode, AgentID, ExpiresAt,
// KeyID, Epoch), with a fresh random ID.
func (k *Keyring) IssueAgentToken(t AgentToken) string {
	t.Expiry = t.ExpiresAt.Unix()
	t.ID = RandomBase62(agentTokenIDLen)
	return k.sign(agentTokenPrefix+string(t.Mode)+"_", t)
}

// sign returns prefix + base64url(JSON(payload)) + "." + base64url(HMAC(prefix and payload)):
// the prefix is under the signature, so one kind of token can never pass for another.
func (k *Keyring) sign(prefix string, payload any) string {
	data, _ := json.Marshal(payload)
	head := prefix + base64.RawURLEncoding.EncodeToString(data)
	m := hmac.New(sha256.New, k.tokenMAC)
	m.Write([]byte(head))
	return head + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// open checks token's signature and prefix and decodes its payload into v.
func (k *Keyring) open(prefix, token string, v any) bool {
	if len(token) > maxTokenLen || !strings.HasPrefix(token, prefix) {
		return false
	}
	head, sig, ok := strings.Cut(token, ".")
	if !ok {
		return false
	}
	// Strict: a lenient decoder ignores the last character's spare bits, giving one token
	// several accepted spellings.
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	m := hmac.New(sha256.New, k.tokenMAC)
	m.Write([]byte(head))
	if err != nil || !hmac.Equal(got, m.Sum(nil)) {
		return false
	}
	data, err := base64.RawURLEncoding.Strict().DecodeString(head[len(prefix):])
	return err == nil && json.Unmarshal(data, v) == nil
}

// VerifyAgentToken checks token's signature and expiry at now. It answers auth_invalid_key for
// anything malformed or forged and auth_key_expired for a token past its expiry.
func (k *Keyring) VerifyAgentToken(token string, now time.Time) (*AgentToken, error) {
	var t AgentToken
	var mode Mode
	for _, m := range []Mode{ModeTest, ModeLive} {
		if k.open(agentTokenPrefix+string(m)+"_", token, &t) {
			mode = m
		}
	}
	// A token without its minting key's id predates revocable tokens: it cannot be revoked, so it
	// is not accepted either.
	if mode == "" || t.MerchantID == "" || t.AgentID == "" || t.KeyID == "" || t.ID == "" {
		return nil, Errorf(CodeAuthInvalidKey, "The agent token is malformed or was not issued by this paybridge.").
			WithFix("Mint a fresh agent token with POST /v1/agent_tokens from your backend and pass it to the widget.")
	}
	t.Mode = mode
	t.ExpiresAt = time.Unix(t.Expiry, 0).UTC()
	if !now.Before(t.ExpiresAt) {
		return nil, Errorf(CodeAuthKeyExpired, "The agent token has expired.").
			WithFix("Mint a fresh agent token with POST /v1/agent_tokens; the widget asks its host page for one when this happens.")
	}
	return &t, nil
}

// webhookToken is what a token issued to VCC for its webhook calls asserts.
type webhookToken struct {
	MerchantID string `json:"m"`
	Expiry     int64  `json:"e"`
}

// IssueWebhookToken returns a bearer token VCC presents on its webhook calls for merchantID,
// valid until expiresAt.
func (k *Keyring) IssueWebhookToken(merchantID string, expiresAt time.Time) string {
	return k.sign(webhookTokenPrefix, webhookToken{MerchantID: merchantID, Expiry: expiresAt.Unix()})
}

// VerifyWebhookToken returns the merchant a webhook token was issued for, if it is genuine and
// unexpired at now.
func (k *Keyring) VerifyWebhookToken(token string, now time.Time) (string, bool) {
	var t webhookToken
	if !k.open(webhookTokenPrefix, token, &t) || t.MerchantID == "" || !now.Before(time.Unix(t.Expiry, 0)) {
		return "", false
	}
	return t.MerchantID, true
}
