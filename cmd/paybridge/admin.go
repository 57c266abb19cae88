package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
	"github.com/paybridge/paybridge/bridge/pgstore"
	"github.com/paybridge/paybridge/config"
)

// admin is what `paybridge keys` and `paybridge backup` do, wherever they run: on the store
// directly (localAdmin), or, while serve holds the bbolt file, through serve's admin socket
// (socketAdmin), whose server runs the same localAdmin on serve's own key service. So there is
// one implementation, and a key revoked through the socket closes its agent sockets at once.
type admin interface {
	CreateKey(ctx context.Context, merchantID string, typ bridge.KeyType, mode bridge.Mode) (*adminKey, error)
	ListKeys(ctx context.Context, merchantID string, mode bridge.Mode) ([]*adminKey, error)
	RevokeKey(ctx context.Context, id string) (*adminKey, error)
	// RollKey replaces key id with a new key of its merchant, type and mode, answered with its
	// plaintext; id keeps working for grace (0: the key service's default, 24 h).
	RollKey(ctx context.Context, id string, grace time.Duration) (*adminKey, error)
	// Backup writes a consistent copy of the bbolt store to w and returns its length.
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// adminKey is an API key as the operator sees it: never the secret, except Plaintext in the
// answer to the create that made it.
type adminKey struct {
	Merchant    string          `json:"merchant"`
	Mode        bridge.Mode     `json:"mode"`
	Type        bridge.KeyType  `json:"type"`
	ID          string          `json:"id"`
	Key         string          `json:"key"` // redacted: prefix and last four
	Plaintext   string          `json:"plaintext,omitempty"`
	CreatedAt   time.Time       `json:"createdAt"`
	Status      bridge.KeyState `json:"status"`
	RolledAt    *time.Time      `json:"rolledAt,omitempty"`
	RolledTo    string          `json:"rolledTo,omitempty"`
	ActiveUntil *time.Time      `json:"activeUntil,omitempty"` // a rolled key's grace end
	// PreviousUntil, in the answer to a roll, is when the key it replaced stops working.
	PreviousUntil time.Time  `json:"previousUntil,omitzero"`
	RevokedAt     *time.Time `json:"revokedAt,omitempty"`
	LastUsedAt    *time.Time `json:"lastUsedAt"` // null: not known (only a running server knows, since it started)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// localAdmin runs the admin operations on a store this process holds: the CLI's own (serve not
// running, or PostgreSQL), or serve's, behind its admin socket.
type localAdmin struct {
	keys      *bridge.KeyService
	store     bridge.Store
	merchants []string // configured merchant ids, for listing every merchant's keys
	clock     bridge.Clock
	serving   bool // keys.LastUsed is this server's memory of use; the CLI's own knows nothing
}

func (l *localAdmin) view(k *bridge.APIKey) *adminKey {
	v := &adminKey{Merchant: k.MerchantID, Mode: k.Mode, Type: k.Type, ID: k.ID, Key: k.Redacted(),
		CreatedAt: k.CreatedAt.UTC(), Status: k.State(l.clock.Now()), RolledAt: timePtr(k.RolledAt), RolledTo: k.RolledTo,
		ActiveUntil: timePtr(k.ExpiresAt), RevokedAt: timePtr(k.RevokedAt)}
	if at, ok := l.keys.LastUsed(k.ID); ok && l.serving {
		v.LastUsedAt = &at
	}
	return v
}

// CreateKey implements admin.
func (l *localAdmin) CreateKey(ctx context.Context, merchantID string, typ bridge.KeyType, mode bridge.Mode) (*adminKey, error) {
	plain, key, err := l.keys.CreateKey(ctx, merchantID, typ, mode)
	if err != nil {
		return nil, err
	}
	v := l.view(key)
	v.Plaintext = plain
	return v, nil
}

// ListKeys implements admin: merchantID's keys ("" for every configured merchant), of mode (""
// for both), by merchant, then mode, then age.
func (l *localAdmin) ListKeys(ctx context.Context, merchantID string, mode bridge.Mode) ([]*adminKey, error) {
	merchants := l.merchants
	if merchantID != "" {
		if !slices.Contains(l.merchants, merchantID) {
			return nil, bridge.Errorf(bridge.CodeMerchantNotConfigured, "Merchant %q is not configured on this paybridge.", merchantID).
				WithFix("Use one of the merchant ids of the configuration, or leave --merchant out to list every merchant's keys.")
		}
		merchants = []string{merchantID}
	}
	modes := []bridge.Mode{bridge.ModeTest, bridge.ModeLive}
	if mode != "" {
		if !mode.Valid() {
			return nil, bridge.Errorf(bridge.CodeValidationError, "mode must be %q or %q", bridge.ModeTest, bridge.ModeLive).WithParam("mode")
		}
		modes = []bridge.Mode{mode}
	}
	out := []*adminKey{}
	for _, m := range merchants {
		for _, md := range modes {
			keys, err := l.keys.ListKeys(ctx, m, md)
			if err != nil {
				return nil, err
			}
			for _, k := range keys {
				out = append(out, l.view(k))
			}
		}
	}
	return out, nil
}

// RevokeKey implements admin: the key, whichever merchant's, ends at once; the key service's
// rules hold (never the last active secret key of a merchant and mode).
func (l *localAdmin) RevokeKey(ctx context.Context, id string) (*adminKey, error) {
	key, err := l.ownedKey(ctx, id)
	if err != nil {
		return nil, err
	}
	revoked, err := l.keys.RevokeKey(ctx, key.MerchantID, id)
	if err != nil {
		return nil, err
	}
	return l.view(revoked), nil
}

// RollKey implements admin: the key, whichever merchant's, is rolled by the key service's rules.
func (l *localAdmin) RollKey(ctx context.Context, id string, grace time.Duration) (*adminKey, error) {
	key, err := l.ownedKey(ctx, id)
	if err != nil {
		return nil, err
	}
	plain, next, err := l.keys.RollKey(ctx, key.MerchantID, id, grace)
	if err != nil {
		return nil, err
	}
	old, err := l.store.APIKey(ctx, id)
	if err != nil {
		return nil, err
	}
	v := l.view(next)
	v.Plaintext, v.PreviousUntil = plain, old.ExpiresAt.UTC()
	return v, nil
}

// ownedKey reads key id for an operation on it, or says there is none.
func (l *localAdmin) ownedKey(ctx context.Context, id string) (*bridge.APIKey, error) {
	key, err := l.store.APIKey(ctx, id)
	if errors.Is(err, bridge.ErrNotFound) {
		return nil, bridge.Errorf(bridge.CodeValidationError, "No API key %q exists.", id).WithParam("id").
			WithFix("Take the id (key_...) from paybridge keys list.")
	}
	return key, err
}

// Backup implements admin.
func (l *localAdmin) Backup(_ context.Context, w io.Writer) (int64, error) {
	return l.backup(w, nil)
}

func (l *localAdmin) backup(w io.Writer, size func(int64) error) (int64, error) {
	bolt, ok := l.store.(*boltstore.Store)
	if !ok {
		return 0, errPostgresBackup
	}
	return bolt.Backup(w, size)
}

// errPostgresBackup is backup's answer on PostgreSQL: say what to do instead of doing nothing.
var errPostgresBackup = errors.New("backup copies the bbolt store, and this configuration uses PostgreSQL (store.url): " +
	"back it up as any PostgreSQL database, with pg_dump or base backups with WAL archiving (docs/OPERATIONS.md, Backups)")

// adminSocketPath is where serve's admin socket is for cfg: admin.socket, or beside the bbolt
// file; "" when it is off or the store is PostgreSQL (the CLI uses the database directly).
func adminSocketPath(cfg *config.Config) string {
	switch {
	case cfg.Store.Shared(), cfg.Admin.Socket == "off":
		return ""
	case cfg.Admin.Socket != "":
		return cfg.Admin.Socket
	}
	return filepath.Join(cfg.DataDir, "paybridge.db") + ".admin.sock"
}

// adminServer is serve's admin socket: HTTP on a unix socket of mode 0600. Whoever can open the
// file is the server's own OS user (or root), so the file's permission is the authorization, as
// with docker.sock; there is no other credential to leak.
type adminServer struct {
	path   string
	info   os.FileInfo // the socket file this server made, so stop removes only that
	srv    *http.Server
	logger *slog.Logger
}

// startAdmin listens on cfg's admin socket for a's store, if it has one. It runs only while a
// holds the bbolt file's lock, so a socket file already there was left by a server that died: it
// is replaced, unless something still answers on it (another paybridge configured with the same
// path). A default path the system cannot bind (too long for a unix socket) only costs the
// socket, with a warning; a configured one is an error.
func startAdmin(cfg *config.Config, a *app) (*adminServer, error) {
	path := adminSocketPath(cfg)
	if path == "" {
		return nil, nil
	}
	s := &adminServer{path: path, logger: a.logger}
	l, err := s.listen()
	if err != nil {
		if cfg.Admin.Socket == "" {
			a.logger.Warn("admin socket disabled: set admin.socket to a shorter path", "path", path, "err", err)
			return nil, nil
		}
		return nil, fmt.Errorf("admin.socket: %w (set admin.socket: off to run without it)", err)
	}
	local := &localAdmin{keys: a.keys, store: a.store, merchants: merchantIDs(cfg), clock: a.clock, serving: true}
	s.srv = &http.Server{Handler: adminHandler(local, a.logger), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	a.logger.Info("admin socket listening", "path", path)
	return s, nil
}

func (s *adminServer) listen() (net.Listener, error) {
	if fi, err := os.Lstat(s.path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket; not replacing it", s.path)
		}
		if c, err := net.DialTimeout("unix", s.path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s is in use by another process (another paybridge with the same admin.socket?)", s.path)
		}
		if err := os.Remove(s.path); err != nil {
			return nil, fmt.Errorf("remove stale %s: %w", s.path, err)
		}
		s.logger.Info("removed a stale admin socket", "path", s.path)
	}
	// The umask makes the socket 0600 from the moment it exists: chmod afterwards would leave a
	// moment in which another user could connect.
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", s.path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false) // stop removes it, only if it is still this one
	if s.info, err = os.Lstat(s.path); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// stop closes the socket and removes its file.
func (s *adminServer) stop() {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.srv.Shutdown(ctx) != nil {
		_ = s.srv.Close()
	}
	if fi, err := os.Lstat(s.path); err == nil && os.SameFile(fi, s.info) {
		_ = os.Remove(s.path)
	}
}

func merchantIDs(cfg *config.Config) []string {
	ids := make([]string, 0, len(cfg.Merchants))
	for _, m := range cfg.Merchants {
		ids = append(ids, m.ID)
	}
	return ids
}

// adminRequest is the body of POST /v1/keys.
type adminRequest struct {
	Merchant string         `json:"merchant"`
	Type     bridge.KeyType `json:"type"`
	Mode     bridge.Mode    `json:"mode"`
	Grace    time.Duration  `json:"grace,omitempty"` // a roll's
}

// adminError is an error as the admin socket answers it; the client rebuilds the bridge.Error.
type adminError struct {
	Code    bridge.Code `json:"code"`
	Message string      `json:"error"`
	Fix     string      `json:"fix,omitempty"`
	Param   string      `json:"param,omitempty"`
}

// adminHandler serves local's operations on the admin socket.
func adminHandler(local *localAdmin, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, r *http.Request, err error) {
		e := bridge.AsError(err)
		if errors.Is(err, errPostgresBackup) {
			e = bridge.Errorf(bridge.CodeValidationError, "%s", err.Error())
		}
		if e.Cause != nil {
			logger.ErrorContext(r.Context(), "admin request failed", "path", r.URL.Path, "err", e.Cause)
		}
		writeAdminJSON(w, bridge.Info(e.Code).Status, adminError{Code: e.Code, Message: e.Message, Fix: e.PublicFix(), Param: e.Param})
	}
	mux.HandleFunc("POST /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		var req adminRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
			fail(w, r, bridge.Errorf(bridge.CodeValidationError, "The request body is not valid JSON."))
			return
		}
		k, err := local.CreateKey(r.Context(), req.Merchant, req.Type, req.Mode)
		if err != nil {
			fail(w, r, err)
			return
		}
		logger.InfoContext(r.Context(), "api key created", "via", "admin socket", "merchant", k.Merchant, "key", k.ID, "type", k.Type, "mode", k.Mode)
		writeAdminJSON(w, http.StatusCreated, k)
	})
	mux.HandleFunc("GET /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		keys, err := local.ListKeys(r.Context(), r.URL.Query().Get("merchant"), bridge.Mode(r.URL.Query().Get("mode")))
		if err != nil {
			fail(w, r, err)
			return
		}
		writeAdminJSON(w, http.StatusOK, keys)
	})
	mux.HandleFunc("POST /v1/keys/{id}/revoke", func(w http.ResponseWriter, r *http.Request) {
		k, err := local.RevokeKey(r.Context(), r.PathValue("id"))
		if err != nil {
			fail(w, r, err)
			return
		}
		logger.InfoContext(r.Context(), "api key revoked", "via", "admin socket", "merchant", k.Merchant, "key", k.ID)
		writeAdminJSON(w, http.StatusOK, k)
	})
	mux.HandleFunc("POST /v1/keys/{id}/roll", func(w http.ResponseWriter, r *http.Request) {
		var req adminRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
			fail(w, r, bridge.Errorf(bridge.CodeValidationError, "The request body is not valid JSON."))
			return
		}
		k, err := local.RollKey(r.Context(), r.PathValue("id"), req.Grace)
		if err != nil {
			fail(w, r, err)
			return
		}
		logger.InfoContext(r.Context(), "api key rolled", "via", "admin socket", "merchant", k.Merchant, "key", r.PathValue("id"), "replacement", k.ID)
		writeAdminJSON(w, http.StatusCreated, k)
	})
	mux.HandleFunc("GET /v1/backup", func(w http.ResponseWriter, r *http.Request) {
		// The copy's length goes out first, so the client can tell a complete copy from a cut one.
		rc := http.NewResponseController(w)
		n, err := local.backup(progressWriter{w: w, rc: rc}, func(size int64) error {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
			w.WriteHeader(http.StatusOK)
			return nil
		})
		if err != nil && n == 0 && w.Header().Get("Content-Length") == "" {
			fail(w, r, err)
			return
		}
		if err != nil {
			// Too late for an error answer: the client sees the copy cut short.
			logger.ErrorContext(r.Context(), "backup through the admin socket failed", "bytes", n, "err", err)
			return
		}
		logger.InfoContext(r.Context(), "backup taken", "via", "admin socket", "bytes", n)
	})
	return mux
}

// progressWriter gives each write to a backup's reader 30 s: the backup holds a read transaction,
// which a write growing the file waits for, so a reader that stops must not hold it for long.
type progressWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (p progressWriter) Write(b []byte) (int, error) {
	_ = p.rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return p.w.Write(b)
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// socketAdmin is admin through a running serve's admin socket.
type socketAdmin struct {
	path   string
	client *http.Client
}

// dialAdmin returns the admin of the server listening on path, if one answers there.
func dialAdmin(path string) (*socketAdmin, bool) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, false
	}
	c.Close()
	return &socketAdmin{path: path, client: &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true, // a command sends one or two requests: leave nothing open
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}}, true
}

// do sends one request and decodes a 2xx JSON answer into out, or returns the server's error.
func (s *socketAdmin) do(ctx context.Context, method, path string, body any, out any) error {
	resp, err := s.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// send sends one request and returns a 2xx answer, or the server's error.
func (s *socketAdmin) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://paybridge-admin"+path, r)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", s.path, err)
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	var e adminError
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e); err != nil || e.Code == "" {
		return nil, fmt.Errorf("admin socket %s answered %s", s.path, resp.Status)
	}
	return nil, &bridge.Error{Code: e.Code, Message: e.Message, Fix: e.Fix, Param: e.Param}
}

// CreateKey implements admin.
func (s *socketAdmin) CreateKey(ctx context.Context, merchantID string, typ bridge.KeyType, mode bridge.Mode) (*adminKey, error) {
	var k adminKey
	if err := s.do(ctx, "POST", "/v1/keys", adminRequest{Merchant: merchantID, Type: typ, Mode: mode}, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// ListKeys implements admin.
func (s *socketAdmin) ListKeys(ctx context.Context, merchantID string, mode bridge.Mode) ([]*adminKey, error) {
	var keys []*adminKey
	q := url.Values{"merchant": {merchantID}, "mode": {string(mode)}}
	if err := s.do(ctx, "GET", "/v1/keys?"+q.Encode(), nil, &keys); err != nil {
		return nil, err
	}
	return keys, nil
}

// RevokeKey implements admin.
func (s *socketAdmin) RevokeKey(ctx context.Context, id string) (*adminKey, error) {
	var k adminKey
	if err := s.do(ctx, "POST", "/v1/keys/"+url.PathEscape(id)+"/revoke", nil, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// RollKey implements admin.
func (s *socketAdmin) RollKey(ctx context.Context, id string, grace time.Duration) (*adminKey, error) {
	var k adminKey
	if err := s.do(ctx, "POST", "/v1/keys/"+url.PathEscape(id)+"/roll", adminRequest{Grace: grace}, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// Backup implements admin: the copy is complete only if every announced byte arrived.
func (s *socketAdmin) Backup(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := s.send(ctx, "GET", "/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("the copy was cut short: %d of %d bytes", n, resp.ContentLength)
	}
	if err != nil {
		return n, fmt.Errorf("backup through %s: %w", s.path, err)
	}
	return n, nil
}

// openAdmin returns the admin for cfg: the database directly on PostgreSQL; on bbolt, the
// running server's admin socket if one answers, else the file itself. If the file is locked (a
// server holds it) and its socket does not answer, the error says why and what to do.
func openAdmin(ctx context.Context, cfg *config.Config) (admin, func(), error) {
	sock := adminSocketPath(cfg)
	if sock != "" {
		if s, ok := dialAdmin(sock); ok {
			return s, func() {}, nil
		}
	}
	store, err := openStore(ctx, cfg, nil, 2*time.Second)
	if errors.Is(err, boltstore.ErrLocked) {
		// A server may have started since the first try.
		if sock != "" {
			if s, ok := dialAdmin(sock); ok {
				return s, func() {}, nil
			}
		}
		why := "admin.socket is off in the configuration: turn it on, or stop paybridge"
		if sock != "" {
			why = "its admin socket " + sock + " does not answer: check admin.socket, and run this as the server's OS user"
		}
		return nil, nil, fmt.Errorf("%w; a running paybridge holds the data directory, and %s", err, why)
	}
	if err != nil {
		return nil, nil, err
	}
	keys := bridge.NewKeyService(bridge.KeyServiceOptions{Store: store, Merchants: bridge.StaticMerchants(cfg.BridgeMerchants()),
		RollGrace: cfg.Keys.RollGrace})
	done := func() { store.Close() }
	if pg, ok := store.(*pgstore.Store); ok {
		// On a shared database the nodes hear a revocation as they hear one another's, so the
		// agent sockets a revoked key opened close at once on every node.
		fanout, err := credentialFanout(ctx, cfg, pg)
		if err != nil {
			store.Close()
			return nil, nil, err
		}
		keys.Watch(fanout)
		done = func() { fanout.Close(); store.Close() }
	}
	return &localAdmin{keys: keys, store: store, merchants: merchantIDs(cfg), clock: bridge.SystemClock{}}, done, nil
}

// credentialFanout is the node-to-node channel the CLI tells of the credentials it ends.
func credentialFanout(ctx context.Context, cfg *config.Config, pg *pgstore.Store) (*pgstore.Fanout, error) {
	master, err := cfg.MasterKeyBytes() // required with store.url
	if err != nil {
		return nil, err
	}
	keyring, err := bridge.NewKeyring(master)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return pgstore.NewFanout(ctx, pg, keyring, bridge.NewHub(slog.New(slog.DiscardHandler), 0))
}
