package web

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
)

// openAPIDocument is the API's OpenAPI 3.1 description, written by hand from the handlers (see
// openapi_test.go, which holds the API to it). Its servers entry is a placeholder: openAPIFor
// points it at the serving paybridge.
//
//go:embed openapi.json
var openAPIDocument []byte

// openAPIServed caches the served document for the last public base URL asked for: it is static
// for a server, and a process normally runs one, so this is encoded once.
var openAPIServed struct {
	sync.Mutex
	base string
	doc  []byte
}

// openAPI is GET /openapi.json.
func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) error {
	doc, err := servedOpenAPI(s.publicBase)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, err = w.Write(doc)
	return err
}

// servedOpenAPI returns the document as served from base.
func servedOpenAPI(base string) ([]byte, error) {
	c := &openAPIServed
	c.Lock()
	defer c.Unlock()
	if c.doc == nil || c.base != base {
		doc, err := openAPIFor(base)
		if err != nil {
			return nil, err
		}
		c.base, c.doc = base, doc
	}
	return c.doc, nil
}

// openAPIFor returns the embedded document with its server, and the token URL of the OAuth flow
// VCC uses for webhooks, pointed at base. Without a base the document keeps relative URLs.
func openAPIFor(base string) ([]byte, error) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(openAPIDocument))
	dec.UseNumber() // keep every number exactly as written
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	server := base
	if server == "" {
		server = "/"
	}
	doc["servers"] = []any{map[string]any{"url": server, "description": "This paybridge."}}
	if flow, ok := openAPIField(doc, "components", "securitySchemes", "vccWebhookToken", "flows", "clientCredentials").(map[string]any); ok {
		flow["tokenUrl"] = base + "/oauth/token"
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // descriptions quote <, > and & for people, not for HTML
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	return buf.Bytes(), nil
}

// openAPIField walks nested JSON objects by key, returning nil where a key is missing.
func openAPIField(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
