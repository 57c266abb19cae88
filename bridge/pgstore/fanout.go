package pgstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paybridge/paybridge/bridge"
)

// fanoutChannel is the NOTIFY channel of agent events.
const fanoutChannel = "paybridge_agent_events"

// maxInline is the largest notification payload sent inline: PostgreSQL refuses payloads of 8000
// bytes or more; a larger event goes to agent_events and its id is notified instead.
const maxInline = 7000

// fanoutAD binds sealed events to their use, so a sealed event is never taken for anything else
// sealed with the same master key.
var fanoutAD = []byte("paybridge agent event")

// credentialAD binds sealed credential events likewise.
var credentialAD = []byte("paybridge credential event")

// Fanout is the bridge.Publisher of a node on a shared database: every event goes to this node's
// sockets (through local, the Hub) and, sealed with the master key, to every other node, which
// hands it to its own sockets. Provider tokens in a handoff therefore cross the database only
// sealed. Events go out with NOTIFY, which PostgreSQL delivers in commit order; Publish returns
// once its notification is committed, and the lifecycle publishes under the session's lock, so
// every node sees one session's events in attempt order.
type Fanout struct {
	store   *Store
	keyring *bridge.Keyring
	local   bridge.Publisher

	cancel context.CancelFunc
	done   chan struct{}

	ready     chan struct{} // closed once the listener has subscribed the first time
	readyOnce sync.Once

	// credentials hears the credential events other nodes forward (this node's server, which
	// closes the sockets they opened); nil: none forwarded in.
	credMu      sync.Mutex
	credentials bridge.CredentialWatcher
}

var (
	_ bridge.Publisher         = (*Fanout)(nil)
	_ bridge.CredentialWatcher = (*Fanout)(nil)
)

// wireCredential is a credential event as it crosses the database, before sealing: a key that
// ends (Key and At) or an agent's tokens revoked (Revocation).
type wireCredential struct {
	Key        *bridge.APIKey               `json:"key,omitempty"`
	At         time.Time                    `json:"at,omitzero"`
	Revocation *bridge.AgentTokenRevocation `json:"revocation,omitempty"`
}

// ForwardCredentials makes w hear the credential events of the other nodes (revoked or rolled
// keys, revoked agent tokens), so the sockets they opened on this node end at once too.
func (f *Fanout) ForwardCredentials(w bridge.CredentialWatcher) {
	f.credMu.Lock()
	defer f.credMu.Unlock()
	f.credentials = w
}

// KeyEnds implements bridge.CredentialWatcher: register the Fanout with this node's KeyService
// and every other node hears that key ends.
func (f *Fanout) KeyEnds(key *bridge.APIKey, at time.Time) {
	f.notifyCredential(wireCredential{Key: key, At: at})
}

// AgentTokensRevoked implements bridge.CredentialWatcher, as KeyEnds does.
func (f *Fanout) AgentTokensRevoked(rec *bridge.AgentTokenRevocation) {
	f.notifyCredential(wireCredential{Revocation: rec})
}

// notifyCredential sends a credential event, sealed, to the other nodes. A failure is logged: the
// other nodes' sockets then end at their next use of the credential (every REST call and
// connection checks it against the store).
func (f *Fanout) notifyCredential(c wireCredential) {
	data, err := json.Marshal(c)
	if err != nil {
		f.store.log.Error("encode credential event for other nodes", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	payload := f.store.node + " c " + base64.StdEncoding.EncodeToString(f.keyring.Seal(data, credentialAD))
	if _, err := f.store.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, fanoutChannel, payload); err != nil {
		f.store.log.Error("credential event not sent to other nodes", "err", err)
	}
}

// receiveCredential hands another node's credential event to this node's watcher.
func (f *Fanout) receiveCredential(from string, sealed []byte) {
	plain, err := f.keyring.Open(sealed, credentialAD)
	var c wireCredential
	if err == nil {
		err = json.Unmarshal(plain, &c)
	}
	if err != nil {
		f.store.log.Error("credential event from another node unreadable", "from", from, "err", err)
		return
	}
	f.credMu.Lock()
	w := f.credentials
	f.credMu.Unlock()
	switch {
	case w == nil:
	case c.Key != nil:
		w.KeyEnds(c.Key, c.At)
	case c.Revocation != nil:
		w.AgentTokensRevoked(c.Revocation)
	}
}

// wireFanout is an event as it crosses the database, before sealing.
type wireFanout struct {
	Agent     bridge.AgentRef  `json:"agent"`
	Type      bridge.EventType `json:"type"`
	ID        string           `json:"id"`
	SessionID string           `json:"sessionId,omitempty"`
	Data      json.RawMessage  `json:"data"`
}

// NewFanout starts listening for other nodes' events and returns the publisher; Close stops it.
// It waits (up to ctx) until the listener is subscribed, so no event published after it returns
// is missed by this node.
func NewFanout(ctx context.Context, store *Store, keyring *bridge.Keyring, local bridge.Publisher) (*Fanout, error) {
	if store == nil || keyring == nil || local == nil {
		return nil, errors.New("pgstore: NewFanout needs a store, a keyring and a local publisher")
	}
	bg, cancel := context.WithCancel(context.Background())
	f := &Fanout{store: store, keyring: keyring, local: local, cancel: cancel, done: make(chan struct{}), ready: make(chan struct{})}
	go f.listen(bg)
	select {
	case <-f.ready:
		return f, nil
	case <-ctx.Done():
		f.Close()
		return nil, fmt.Errorf("pgstore: fan-out listener: %w", ctx.Err())
	}
}

// Close stops listening. Publish still reaches this node's sockets afterwards.
func (f *Fanout) Close() {
	f.cancel()
	<-f.done
}

// Publish implements bridge.Publisher: this node's sockets get ev at once, the other nodes' when
// its notification commits. A database failure is logged: the other nodes' sockets miss the event
// (their agents get the current state in the snapshot when they reconnect), this node's do not.
func (f *Fanout) Publish(ev *bridge.Event) {
	f.local.Publish(ev)
	data, err := json.Marshal(ev.Data)
	if err == nil {
		data, err = json.Marshal(wireFanout{Agent: ev.Agent, Type: ev.Type, ID: ev.ID, SessionID: ev.SessionID, Data: data})
	}
	if err != nil {
		f.store.log.Error("encode agent event for other nodes", "type", ev.Type, "session", ev.SessionID, "err", err)
		return
	}
	sealed := f.keyring.Seal(data, fanoutAD)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	payload := f.store.node + " i " + base64.StdEncoding.EncodeToString(sealed)
	if len(payload) > maxInline {
		err = f.store.tx(ctx, func(tx pgx.Tx) error {
			var id int64
			if err := tx.QueryRow(ctx, `INSERT INTO agent_events (sealed) VALUES ($1) RETURNING id`, sealed).Scan(&id); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, fanoutChannel, f.store.node+" r "+strconv.FormatInt(id, 10))
			return err
		})
	} else {
		_, err = f.store.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, fanoutChannel, payload)
	}
	if err != nil {
		f.store.log.Error("agent event not sent to other nodes", "type", ev.Type, "session", ev.SessionID, "err", err)
	}
}

// listen keeps a connection LISTENing, reconnecting after a failure, until ctx ends.
func (f *Fanout) listen(ctx context.Context) {
	defer close(f.done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := f.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		f.store.log.Warn("fan-out listener lost; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (f *Fanout) listenOnce(ctx context.Context) error {
	cfg := f.store.pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+fanoutChannel); err != nil {
		return err
	}
	f.readyOnce.Do(func() { close(f.ready) })
	lastPurge := time.Now()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		f.receive(ctx, conn, n.Payload)
		if time.Since(lastPurge) > time.Minute {
			lastPurge = time.Now()
			_, _ = conn.Exec(ctx, `DELETE FROM agent_events WHERE at < now() - interval '5 minutes'`) // best effort
		}
	}
}

// receive hands another node's event to this node's sockets.
func (f *Fanout) receive(ctx context.Context, conn *pgx.Conn, payload string) {
	node, rest, _ := strings.Cut(payload, " ")
	if node == f.store.node {
		return // this node's sockets had it from Publish
	}
	kind, body, _ := strings.Cut(rest, " ")
	var sealed []byte
	var err error
	switch kind {
	case "c":
		if sealed, err = base64.StdEncoding.DecodeString(body); err == nil {
			f.receiveCredential(node, sealed)
			return
		}
	case "i":
		sealed, err = base64.StdEncoding.DecodeString(body)
	case "r":
		var id int64
		if id, err = strconv.ParseInt(body, 10, 64); err == nil {
			err = conn.QueryRow(ctx, `SELECT sealed FROM agent_events WHERE id = $1`, id).Scan(&sealed)
		}
	default:
		err = fmt.Errorf("unknown payload kind %q", kind)
	}
	var plain []byte
	if err == nil {
		plain, err = f.keyring.Open(sealed, fanoutAD)
	}
	var w wireFanout
	if err == nil {
		err = json.Unmarshal(plain, &w)
	}
	if err != nil {
		// Another master key (a misconfigured node) or a damaged row: never guess.
		f.store.log.Error("agent event from another node unreadable", "from", node, "err", err)
		return
	}
	f.local.Publish(&bridge.Event{Agent: w.Agent, Type: w.Type, ID: w.ID, SessionID: w.SessionID, Data: w.Data})
}
