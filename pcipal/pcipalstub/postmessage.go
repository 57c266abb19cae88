package pcipalstub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
)

// SessionIDPlaceholder, as a whole string value anywhere in PostMessage.Data, is replaced by the
// provider session id of the page that posts, the way a flow step can use the session's values
// (an assumption: PCI Pal's flow designer is not public). Nothing else in the data changes.
const SessionIDPlaceholder = "{{sessionId}}"

// PostMessage is a payment flow's PostMessage step: once the capture page has loaded it runs
// window.parent.postMessage(Data, TargetOrigin). Live PCI Pal posts only when the flow has this
// step, with the data and target origin set in the flow.
type PostMessage struct {
	Data         json.RawMessage `json:"data"`         // any JSON value but null
	TargetOrigin string          `json:"targetOrigin"` // "*" or an http(s) origin
}

// Validate reports what is wrong with p.
func (p *PostMessage) Validate() error {
	data := bytes.TrimSpace(p.Data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return errors.New("postMessage.data is required (any JSON value but null)")
	}
	if !json.Valid(data) {
		return errors.New("postMessage.data is not valid JSON")
	}
	if p.TargetOrigin == "*" {
		return nil
	}
	u, err := url.Parse(p.TargetOrigin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("postMessage.targetOrigin must be \"*\" or an origin such as https://desk.example.com, got %q", p.TargetOrigin)
	}
	return nil
}

// clone returns a deep copy of p (nil for nil).
func (p *PostMessage) clone() *PostMessage {
	if p == nil {
		return nil
	}
	return &PostMessage{Data: bytes.Clone(bytes.TrimSpace(p.Data)), TargetOrigin: p.TargetOrigin}
}

// dataFor returns the data the page of provider session id posts: Data with every string value
// equal to SessionIDPlaceholder replaced by id, and otherwise exactly as configured.
func (p *PostMessage) dataFor(id string) (json.RawMessage, error) {
	if !bytes.Contains(p.Data, []byte(SessionIDPlaceholder)) {
		return p.Data, nil
	}
	dec := json.NewDecoder(bytes.NewReader(p.Data))
	dec.UseNumber() // numbers go out as written
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(replacePlaceholder(v, id))
}

// replacePlaceholder returns v with every string equal to SessionIDPlaceholder replaced by id.
func replacePlaceholder(v any, id string) any {
	switch t := v.(type) {
	case string:
		if t == SessionIDPlaceholder {
			return id
		}
	case map[string]any:
		for k, e := range t {
			t[k] = replacePlaceholder(e, id)
		}
	case []any:
		for i, e := range t {
			t[i] = replacePlaceholder(e, id)
		}
	}
	return v
}

// SetPostMessage switches the flow's PostMessage step: p's data from then on, or none for nil
// (the default, as live PCI Pal). Pages already shown keep what they had.
func (s *Server) SetPostMessage(p *PostMessage) error {
	if p != nil {
		if err := p.Validate(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.postMessage = p.clone()
	s.log.Info("pcipalstub: PostMessage step set", "on", p != nil)
	return nil
}

// PostMessage returns the flow's PostMessage step, nil when it has none.
func (s *Server) PostMessage() *PostMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.postMessage.clone()
}
