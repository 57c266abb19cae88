package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/web"
)

// openAPISpecURL is where the tests register the served document with the schema compiler;
// schemas are compiled by JSON pointer into it, so their $refs resolve against the document.
const openAPISpecURL = "https://paybridge.test/openapi.json"

// openAPISpec is the OpenAPI document a server serves, with its schemas compiled on demand.
type openAPISpec struct {
	doc      map[string]any // numbers as json.Number
	compiler *jsonschema.Compiler

	mu       sync.Mutex
	compiled map[string]*jsonschema.Schema // by JSON pointer
}

// fetchOpenAPI gets GET /openapi.json from h and loads it.
func fetchOpenAPI(t *testing.T, h *harness) (*openAPISpec, *response) {
	t.Helper()
	r := h.do("GET", "/openapi.json", "", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.Body))
	require.NoError(t, err, "the document is not JSON")
	doc, ok := v.(map[string]any)
	require.True(t, ok, "the document is not a JSON object")
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020) // OpenAPI 3.1's dialect is 2020-12
	c.AssertFormat()                     // date-time, uri: the formats are part of the contract
	require.NoError(t, c.AddResource(openAPISpecURL, doc))
	return &openAPISpec{doc: doc, compiler: c, compiled: map[string]*jsonschema.Schema{}}, r
}

// pointerToken escapes one JSON pointer token (RFC 6901).
func pointerToken(s string) string { return strings.NewReplacer("~", "~0", "/", "~1").Replace(s) }

// at returns the value at JSON pointer ptr ("/components/schemas/Session"), or nil.
func (s *openAPISpec) at(ptr string) any {
	var v any = s.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)]
	}
	return v
}

// object returns the object at ptr, following OpenAPI references ({"$ref": "#/..."}), and
// where it really lives.
func (s *openAPISpec) object(t *testing.T, ptr string) (string, map[string]any) {
	t.Helper()
	for range 10 {
		m, ok := s.at(ptr).(map[string]any)
		require.True(t, ok, "nothing at %s", ptr)
		ref, isRef := m["$ref"].(string)
		if !isRef {
			return ptr, m
		}
		require.True(t, strings.HasPrefix(ref, "#/"), "external reference %s at %s", ref, ptr)
		ptr = strings.TrimPrefix(ref, "#")
	}
	t.Fatalf("reference loop at %s", ptr)
	return "", nil
}

// schema compiles the JSON Schema at ptr.
func (s *openAPISpec) schema(t *testing.T, ptr string) *jsonschema.Schema {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.compiled[ptr]; ok {
		return sch
	}
	sch, err := s.compiler.Compile(openAPISpecURL + "#" + strings.ReplaceAll(ptr, "%", "%25"))
	require.NoError(t, err, "compile %s", ptr)
	s.compiled[ptr] = sch
	return sch
}

// validate checks a JSON document against the schema at ptr.
func (s *openAPISpec) validate(t *testing.T, ptr string, data []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.schema(t, ptr).Validate(inst)
}

// templateSegment matches a path template's parameter, e.g. {id}.
var templateSegment = regexp.MustCompile(`^\{[^}/]+\}$`)

// operation finds the documented operation for method and a concrete request path (any query is
// ignored) and returns its JSON pointer. A literal segment beats a parameter.
func (s *openAPISpec) operation(method, path string) (string, map[string]any, bool) {
	path, _, _ = strings.Cut(path, "?")
	want := strings.Split(path, "/")
	best, bestParams := "", -1
	for tmpl, item := range s.doc["paths"].(map[string]any) {
		if _, ok := item.(map[string]any)[strings.ToLower(method)]; !ok {
			continue
		}
		segs := strings.Split(tmpl, "/")
		if len(segs) != len(want) {
			continue
		}
		params, match := 0, true
		for i, seg := range segs {
			switch {
			case templateSegment.MatchString(seg) && want[i] != "":
				params++
			case seg != want[i]:
				match = false
			}
		}
		if match && (bestParams < 0 || params < bestParams) {
			best, bestParams = tmpl, params
		}
	}
	if bestParams < 0 {
		return "", nil, false
	}
	ptr := "/paths/" + pointerToken(best) + "/" + strings.ToLower(method)
	return ptr, s.at(ptr).(map[string]any), true
}

// bareMediaType returns the bare media type of a Content-Type header.
func bareMediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// headerInstance turns a header value into what its schema describes: a number for numeric
// schemas (when it parses as one), the string otherwise.
func headerInstance(value string, schema map[string]any) any {
	if typ, _ := schema["type"].(string); typ == "integer" || typ == "number" {
		if _, err := strconv.ParseFloat(value, 64); err == nil {
			return json.Number(value)
		}
	}
	return value
}

// checkResponse fails the test unless the document declares r's status for method and path, the
// response carries every header the document requires (and every documented header it carries
// has the documented form), its Content-Type is a documented one and its body validates against
// the documented schema.
func checkResponse(t *testing.T, spec *openAPISpec, method, path string, r *response) {
	t.Helper()
	opPtr, op, ok := spec.operation(method, path)
	require.True(t, ok, "%s %s is not in the document", method, path)
	status := strconv.Itoa(r.Status)
	if _, ok := op["responses"].(map[string]any)[status]; !ok {
		assert.Failf(t, "undocumented status", "%s %s answered %d, which %s does not document: %s", method, path, r.Status, opPtr, r.Body)
		return
	}
	respPtr, resp := spec.object(t, opPtr+"/responses/"+status)
	where := fmt.Sprintf("%s %s → %d", method, path, r.Status)

	headers, _ := resp["headers"].(map[string]any)
	for name := range headers {
		hPtr, h := spec.object(t, respPtr+"/headers/"+pointerToken(name))
		value := r.Header.Get(name)
		if required, _ := h["required"].(bool); required {
			assert.NotEmpty(t, value, "%s: missing header %s", where, name)
		}
		if schema, ok := h["schema"].(map[string]any); ok && value != "" {
			assert.NoError(t, spec.schema(t, hPtr+"/schema").Validate(headerInstance(value, schema)), "%s: header %s: %q", where, name, value)
		}
	}
	if r.Status != http.StatusSwitchingProtocols {
		assert.NotEmpty(t, r.Header.Get("X-Request-Id"), "%s: no X-Request-Id", where)
	}

	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		assert.Empty(t, r.Body, "%s: the document declares no body", where)
		return
	}
	mt := bareMediaType(r.Header.Get("Content-Type"))
	if _, ok := content[mt]; !ok {
		if _, ok := content["*/*"]; !ok {
			assert.Failf(t, "undocumented media type", "%s: Content-Type %q is not one of %v", where, mt, slices.Sorted(maps.Keys(content)))
			return
		}
		mt = "*/*"
	}
	if mt != "application/json" {
		assert.NotEmpty(t, r.Body, "%s: empty %s body", where, mt)
		return
	}
	assert.NoError(t, spec.validate(t, respPtr+"/content/application~1json/schema", r.Body), "%s: body %s", where, r.Body)
}

// checkRequestBody fails the test unless body validates against the JSON request body schema
// documented for method and path.
func checkRequestBody(t *testing.T, spec *openAPISpec, method, path string, body any) {
	t.Helper()
	opPtr, _, ok := spec.operation(method, path)
	require.True(t, ok, "%s %s is not in the document", method, path)
	bodyPtr, _ := spec.object(t, opPtr+"/requestBody")
	data, ok := body.([]byte)
	if !ok {
		var err error
		data, err = json.Marshal(body)
		require.NoError(t, err)
	}
	assert.NoError(t, spec.validate(t, bodyPtr+"/content/application~1json/schema", data), "%s %s request body %s", method, path, data)
}

// operations lists every documented operation as "METHOD /path" → JSON pointer.
func (s *openAPISpec) operations() map[string]string {
	out := map[string]string{}
	for tmpl, item := range s.doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			if _, ok := op.(map[string]any); !ok || method == "parameters" {
				continue
			}
			out[strings.ToUpper(method)+" "+tmpl] = "/paths/" + pointerToken(tmpl) + "/" + method
		}
	}
	return out
}

// registeredRoute is one mux.Handle line of routes.go.
type registeredRoute struct {
	method      string // "" for every method
	path        string // as registered: "/v1/sessions/{id}", "/static/"
	conditional bool   // registered inside an if: may be absent from a deployment
}

// routePattern matches the registrations in routes.go; the indentation tells a conditional
// registration (inside an if) from an unconditional one.
var routePattern = regexp.MustCompile(`(?m)^(\t+)mux\.Handle\("(?:([A-Z]+) )?(/[^"]*)"`)

func registeredRoutes(t *testing.T) []registeredRoute {
	t.Helper()
	src, err := os.ReadFile("routes.go")
	require.NoError(t, err)
	var out []registeredRoute
	for _, m := range routePattern.FindAllStringSubmatch(string(src), -1) {
		out = append(out, registeredRoute{method: m[2], path: m[3], conditional: len(m[1]) > 1})
	}
	require.NotEmpty(t, out, "no routes found in routes.go")
	return out
}

// paramName matches a path parameter in a Go pattern or an OpenAPI template.
var paramName = regexp.MustCompile(`\{[^}]*\}`)

// normalRoutePath makes a Go route pattern and an OpenAPI path template comparable: parameters lose
// their names ({id...} and {id} are both {}), {$} goes, and a subtree pattern ("/static/")
// becomes one parameter segment ("/static/{}").
func normalRoutePath(p string) string {
	p = strings.ReplaceAll(p, "{$}", "")
	if strings.HasSuffix(p, "/") && p != "/" {
		p += "{}"
	}
	return paramName.ReplaceAllString(p, "{}")
}

// backticked finds the `code` names a description mentions.
var backticked = regexp.MustCompile("`([a-z_]+)`")

func mentionedCodes(description string) []bridge.Code {
	var out []bridge.Code
	for _, m := range backticked.FindAllStringSubmatch(description, -1) {
		if slices.Contains(bridge.Codes, bridge.Code(m[1])) {
			out = append(out, bridge.Code(m[1]))
		}
	}
	return out
}

// TestOpenAPIDocument checks the served document itself: OpenAPI 3.1, every schema compiles,
// every route of routes.go is documented (and nothing else), the error codes are exactly the
// catalog's, and every code is documented on some operation under its status.
func TestOpenAPIDocument(t *testing.T) {
	h := newHarness(t)
	spec, r := fetchOpenAPI(t, h)
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.NotEmpty(t, r.Header.Get("X-Request-Id"))

	t.Run("openapi 3.1 with this server", func(t *testing.T) {
		assert.Regexp(t, `^3\.1\.\d+$`, spec.doc["openapi"])
		servers, _ := spec.doc["servers"].([]any)
		require.Len(t, servers, 1)
		assert.Equal(t, h.srv.URL, servers[0].(map[string]any)["url"], "servers is the public base URL")
		assert.Equal(t, h.srv.URL+"/oauth/token",
			spec.at("/components/securitySchemes/vccWebhookToken/flows/clientCredentials/tokenUrl"))
		info := spec.doc["info"].(map[string]any)
		assert.NotEmpty(t, info["title"])
		assert.NotEmpty(t, info["version"])
		assert.Contains(t, info["description"], "X-Request-Id", "the error contract is in the intro")
	})

	t.Run("every schema compiles", func(t *testing.T) {
		schemas := spec.at("/components/schemas").(map[string]any)
		for _, name := range []string{"Session", "SessionList", "CreateSessionRequest", "DryRunResult",
			"AgentTokenRequest", "AgentTokenResponse", "ApiKey", "ApiKeyList", "CreateApiKeyRequest",
			"RollApiKeyRequest", "RollApiKeyResponse", "OAuthTokenResponse", "VccWebhookBody",
			"WebhookReceived", "Error", "Health", "Ready", "ServerEvent", "ClientMessage", "MerchantWebhook"} {
			assert.Contains(t, schemas, name)
		}
		for _, name := range slices.Sorted(maps.Keys(schemas)) {
			spec.schema(t, "/components/schemas/"+pointerToken(name))
		}
		// And every schema used in place: parameters, headers, bodies, responses, webhooks.
		var walk func(ptr string, v any)
		n := 0
		walk = func(ptr string, v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, child := range v {
					p := ptr + "/" + pointerToken(k)
					if k == "schema" {
						spec.schema(t, p)
						n++
						continue
					}
					walk(p, child)
				}
			case []any:
				for i, child := range v {
					walk(ptr+"/"+strconv.Itoa(i), child)
				}
			}
		}
		for _, top := range []string{"paths", "webhooks", "components"} {
			walk("/"+top, spec.doc[top])
		}
		assert.Greater(t, n, 50, "schemas in place")
	})

	t.Run("every route is documented", func(t *testing.T) {
		ops := spec.operations()
		documented := map[string]bool{}
		for op := range ops {
			method, path, _ := strings.Cut(op, " ")
			documented[method+" "+normalRoutePath(path)] = true
		}
		registered := map[string]bool{}
		for _, rt := range registeredRoutes(t) {
			key := rt.method + " " + normalRoutePath(rt.path)
			registered[key] = true
			if rt.method == "" {
				found := false
				for op := range documented {
					found = found || strings.HasSuffix(op, " "+normalRoutePath(rt.path))
				}
				assert.True(t, found || rt.conditional, "route %q (every method) is not documented", rt.path)
				continue
			}
			assert.True(t, documented[key], "route %s %s is not documented", rt.method, rt.path)
		}
		for op := range documented {
			method, path, _ := strings.Cut(op, " ")
			if method == "OPTIONS" {
				// Preflights are answered by the CORS middleware, for browser endpoints only.
				assert.True(t, registered["POST "+path], "preflight for %s, which takes no browser POST", path)
				continue
			}
			assert.True(t, registered[op], "%s is documented but not registered in routes.go", op)
		}
	})

	t.Run("operations", func(t *testing.T) {
		ids := map[string]string{}
		for name, ptr := range spec.operations() {
			op := spec.at(ptr).(map[string]any)
			id, _ := op["operationId"].(string)
			require.NotEmpty(t, id, "%s has no operationId", name)
			assert.NotContains(t, ids, id, "operationId %s of %s is also %s's", id, name, ids[id])
			ids[id] = name
			assert.NotEmpty(t, op["summary"], "%s has no summary", name)
			assert.NotEmpty(t, op["description"], "%s has no description", name)
			assert.Contains(t, op, "security", "%s does not say how it is authenticated", name)
			for status := range op["responses"].(map[string]any) {
				respPtr, resp := spec.object(t, ptr+"/responses/"+status)
				hdrs, _ := resp["headers"].(map[string]any)
				if status != "101" {
					assert.Contains(t, hdrs, "X-Request-Id", "%s %s does not document X-Request-Id", name, status)
				}
				if status == "429" {
					assert.Contains(t, hdrs, "Retry-After", "%s 429 does not document Retry-After", name)
				}
				assert.NotEmpty(t, resp["description"], respPtr)
			}
		}
	})

	t.Run("error codes", func(t *testing.T) {
		_, code := spec.object(t, "/components/schemas/Error/properties/code")
		var enum []bridge.Code
		for _, c := range code["enum"].([]any) {
			enum = append(enum, bridge.Code(c.(string)))
		}
		assert.Equal(t, bridge.Codes, enum, "the Error code enum is exactly the catalog")
		_, errSchema := spec.object(t, "/components/schemas/Error")
		assert.ElementsMatch(t, []any{"error", "code", "fix", "docs", "requestId"}, errSchema["required"])

		// Each shared error response names exactly the codes of its status.
		for name, v := range spec.at("/components/responses").(map[string]any) {
			codes := mentionedCodes(v.(map[string]any)["description"].(string))
			require.NotEmpty(t, codes, "components.responses.%s names no code", name)
			status := bridge.Info(codes[0]).Status
			var want []bridge.Code
			for _, c := range bridge.Codes {
				if bridge.Info(c).Status == status {
					want = append(want, c)
				}
			}
			assert.ElementsMatch(t, want, codes, "components.responses.%s", name)
		}

		// Each operation's error responses name only codes of that status, and every code is
		// named under its status by at least one operation.
		seen := map[bridge.Code][]string{}
		for name, ptr := range spec.operations() {
			for status, v := range spec.at(ptr + "/responses").(map[string]any) {
				n, _ := strconv.Atoi(status)
				if n < 400 {
					continue
				}
				_, resp := spec.object(t, ptr+"/responses/"+status)
				content, _ := resp["content"].(map[string]any)
				if _, isJSON := content["application/json"]; !isJSON {
					continue // /static/'s plain-text 404 is not the envelope
				}
				// The operation's own words when it has them (a reference's description
				// overrides the shared response's), else the shared response's.
				desc, _ := v.(map[string]any)["description"].(string)
				if desc == "" {
					desc = resp["description"].(string)
				}
				codes := mentionedCodes(desc)
				assert.NotEmpty(t, codes, "%s %s names no code", name, status)
				for _, c := range codes {
					assert.Equal(t, bridge.Info(c).Status, n, "%s %s names %s", name, status, c)
					seen[c] = append(seen[c], name)
				}
			}
		}
		for _, c := range bridge.Codes {
			assert.NotEmpty(t, seen[c], "no operation documents %s (HTTP %d)", c, bridge.Info(c).Status)
		}
	})

	t.Run("merchant webhook", func(t *testing.T) {
		_, body := spec.object(t, "/webhooks/sessionEvent/post/requestBody")
		assert.Equal(t, "#/components/schemas/MerchantWebhook",
			body["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)["$ref"])
		var names []string
		for _, p := range spec.at("/webhooks/sessionEvent/post/parameters").([]any) {
			names = append(names, p.(map[string]any)["name"].(string))
		}
		assert.Contains(t, names, "X-VonPay-Signature")
	})
}

// apiCall is one request and its answer.
type apiCall struct {
	method, path string
	r            *response
}

// callAPI sends a request through h.do and keeps what was asked with the answer.
func callAPI(h *harness, method, path, key string, body any, headers ...string) apiCall {
	h.t.Helper()
	return apiCall{method: method, path: path, r: h.do(method, path, key, body, headers...)}
}

// specSocket is an agent socket that keeps every frame exactly as the server wrote it.
type specSocket struct {
	t      *testing.T
	spec   *openAPISpec
	conn   *websocket.Conn
	frames chan []byte
	closed chan struct{}
}

// openSpecSocket opens an agent socket, checks the 101 against the document, authenticates with
// agentToken and returns the socket and its raw ready frame.
func openSpecSocket(t *testing.T, spec *openAPISpec, h *harness, agentToken string) (*specSocket, []byte) {
	t.Helper()
	path := "/v1/ws?key=" + url.QueryEscape(h.publishableKey)
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(h.srv.URL, "http")+path, http.Header{"Origin": {testOrigin}})
	require.NoError(t, err)
	resp.Body.Close()
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		conn.Close()
	})
	checkResponse(t, spec, "GET", path, &response{Status: resp.StatusCode, Header: resp.Header})

	s := &specSocket{t: t, spec: spec, conn: conn, frames: make(chan []byte, 256), closed: make(chan struct{})}
	go func() {
		defer close(s.closed)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			select {
			case s.frames <- data:
			case <-done:
				return
			}
		}
	}()
	s.send(map[string]any{"type": "auth", "agentToken": agentToken})
	return s, s.next("ready")
}

// send checks v against ClientMessage and sends it.
func (s *specSocket) send(v any) {
	s.t.Helper()
	data, err := json.Marshal(v)
	require.NoError(s.t, err)
	assert.NoError(s.t, s.spec.validate(s.t, "/components/schemas/ClientMessage", data), "client message %s", data)
	require.NoError(s.t, s.conn.WriteMessage(websocket.TextMessage, data))
}

// next returns the next frame, which must be a typ event valid against ServerEvent.
func (s *specSocket) next(typ string) []byte {
	s.t.Helper()
	select {
	case data := <-s.frames:
		var ev struct{ Type string }
		require.NoError(s.t, json.Unmarshal(data, &ev), "%s", data)
		require.Equal(s.t, typ, ev.Type, "unexpected event: %s", data)
		assert.NoError(s.t, s.spec.validate(s.t, "/components/schemas/ServerEvent", data), "%s event %s", typ, data)
		return data
	case <-s.closed:
		s.t.Fatalf("socket closed while waiting for %s", typ)
	case <-time.After(eventWait):
		s.t.Fatalf("no %s event within %s", typ, eventWait)
	}
	return nil
}

// TestResponsesMatchOpenAPI drives the main flow, the socket and one real request for every
// error code through a harness, and validates every answer against the schema the document
// declares for its path, method and status.
func TestResponsesMatchOpenAPI(t *testing.T) {
	spec, _ := fetchOpenAPI(t, newHarness(t))

	t.Run("main flow", func(t *testing.T) {
		h := newHarness(t, unrationed, func(c *harnessConfig) {
			c.merchant.VCCWebhook = bridge.VCCWebhookAuth{ClientID: vccHookClient, ClientSecret: vccHookSecret}
			c.merchant.Webhook = bridge.MerchantWebhook{URL: "https://crm.acme.test/paybridge", Secret: "whsec_test_secret"}
		})
		check := func(c apiCall, status int) *response {
			t.Helper()
			require.Equal(t, status, c.r.Status, "%s %s: %s", c.method, c.path, c.r.Body)
			checkResponse(t, spec, c.method, c.path, c.r)
			return c.r
		}
		create := func(body map[string]any) bridge.SessionView {
			t.Helper()
			checkRequestBody(t, spec, "POST", "/v1/sessions", body)
			return check(callAPI(h, "POST", "/v1/sessions", h.secretKey, body), http.StatusCreated).Session(t)
		}
		simple := map[string]any{"agentId": "agent-1", "amount": 1240, "currency": "GBP"}

		// A session made before the agent connects arrives in the ready snapshot.
		first := create(simple)
		tokenBody := map[string]any{"agentId": "agent-1", "ttlSeconds": 3600}
		checkRequestBody(t, spec, "POST", "/v1/agent_tokens", tokenBody)
		token := check(callAPI(h, "POST", "/v1/agent_tokens", h.secretKey, tokenBody), http.StatusCreated).JSON(t)["token"].(string)
		sock, ready := openSpecSocket(t, spec, h, token)
		var snapshot struct {
			Data struct {
				Sessions []struct {
					Handoff *struct{ Attempt int }
				}
			}
		}
		require.NoError(t, json.Unmarshal(ready, &snapshot))
		require.Len(t, snapshot.Data.Sessions, 1)
		require.NotNil(t, snapshot.Data.Sessions[0].Handoff, "the snapshot carries the handoff")

		// Create with every field, dry run, read, list.
		rich := create(map[string]any{
			"agentId": "agent-1", "amount": 4999, "currency": "eur", "country": "ie", "channel": "agent_assist",
			"accountConfigurationId": 2, "reference": "INV-2002",
			"customer":   map[string]any{"firstName": "Ada", "surname": "Lovelace", "email": "ada@example.com", "phone": "+353 1 555 0100", "street1": "1 Main St", "city": "Dublin", "postcode": "D01 F5P2"},
			"successUrl": "https://shop.example/ok", "cancelUrl": "http://localhost:3000/no",
			"lineItems": []map[string]any{{"name": "Gas bill", "quantity": 1, "unitAmount": 4999}},
			"metadata":  map[string]any{"crmCase": "CASE-1"}, "expiresIn": 1800,
		})
		sock.next("session.handoff")
		check(callAPI(h, "POST", "/v1/sessions?dry_run=true", h.secretKey, simple), http.StatusOK)
		check(callAPI(h, "GET", "/v1/sessions/"+rich.ID, h.secretKey, nil), http.StatusOK)
		list := check(callAPI(h, "GET", "/v1/sessions", h.secretKey, nil), http.StatusOK).JSON(t)
		assert.Len(t, list["data"], 2)
		page := check(callAPI(h, "GET", "/v1/sessions?limit=1&status=active&agentId=agent-1", h.secretKey, nil), http.StatusOK).JSON(t)
		assert.Equal(t, true, page["hasMore"])
		check(callAPI(h, "GET", "/v1/sessions?limit=1&starting_after="+rich.ID, h.secretKey, nil), http.StatusOK)

		// Restart, then the customer pays on the new attempt.
		restarted := check(callAPI(h, "POST", "/v1/sessions/"+rich.ID+"/restart", h.secretKey, nil, "Idempotency-Key", "restart-1"), http.StatusOK).Session(t)
		sock.next("session.restarting")
		sock.next("session.handoff")
		h.control("POST", "/_control/sessions/"+restarted.VCC.SessionGUID+"/complete", map[string]any{"decision": "ACCEPT"})
		h.clock.Advance(3 * time.Second)
		sock.next("session.succeeded")
		check(callAPI(h, "GET", "/v1/sessions/"+rich.ID, h.secretKey, nil), http.StatusOK)

		// Cancel; a decline.
		check(callAPI(h, "POST", "/v1/sessions/"+first.ID+"/cancel", h.secretKey, nil), http.StatusOK)
		sock.next("session.cancelled")
		declined := create(simple)
		sock.next("session.handoff")
		h.control("POST", "/_control/sessions/"+declined.VCC.SessionGUID+"/complete", map[string]any{"decision": "REJECT"})
		h.clock.Advance(3 * time.Second)
		sock.next("session.failed")
		check(callAPI(h, "GET", "/v1/sessions/"+declined.ID, h.secretKey, nil), http.StatusOK)

		// Error events: a message the server does not know, and a restart VCC cannot serve
		// (the broadcast about the session, then the reply to this socket).
		unknown := []byte(`{"type":"no.such.message"}`)
		assert.Error(t, spec.validate(t, "/components/schemas/ClientMessage", unknown), "ClientMessage admits only known types")
		require.NoError(t, sock.conn.WriteMessage(websocket.TextMessage, unknown))
		sock.next("error")
		// Ten minutes to live: its TTL passes while VCC still knows its attempt (a TTL past VCC's
		// purge of an attempt paybridge never saw end fails unverified instead: TestOutcomes).
		open := create(map[string]any{"agentId": "agent-1", "amount": 1240, "currency": "GBP", "expiresIn": 600})
		sock.next("session.handoff")
		h.control("PUT", "/_control/faults", map[string]any{"create": "http_503"})
		sock.send(map[string]any{"type": "session.restart", "sessionId": open.ID})
		sock.next("session.restarting")
		sock.next("error")
		sock.next("error")
		h.control("DELETE", "/_control/faults", nil)
		sock.send(map[string]any{"type": "frame.loaded", "sessionId": open.ID, "attempt": 1})
		sock.send(map[string]any{"type": "frame.refused", "data": map[string]any{"sessionId": open.ID, "attempt": 1}})
		sock.next("session.restarting")
		sock.next("session.handoff")
		h.clock.Advance(11 * time.Minute)
		sock.next("session.expired")
		check(callAPI(h, "GET", "/v1/sessions/"+open.ID, h.secretKey, nil), http.StatusOK)

		// The merchant webhooks queued by those transitions.
		queued, err := h.store.DueOutbox(context.Background(), h.clock.Now(), 100)
		require.NoError(t, err)
		var types []string
		for _, m := range queued {
			types = append(types, string(m.Type))
			assert.NoError(t, spec.validate(t, "/components/schemas/MerchantWebhook", m.Payload), "webhook %s", m.Payload)
		}
		assert.ElementsMatch(t, []string{"session.succeeded", "session.cancelled", "session.failed", "session.expired"}, types)

		// A browser create and restart: publishable key, agent token, allowed Origin.
		browser := []string{"Origin", testOrigin, "X-Agent-Token", token}
		mine := check(callAPI(h, "POST", "/v1/sessions", h.publishableKey, map[string]any{"amount": 1240, "currency": "GBP"}, browser...), http.StatusCreated).Session(t)
		sock.next("session.handoff")
		check(callAPI(h, "POST", "/v1/sessions/"+mine.ID+"/restart", h.publishableKey, nil, browser...), http.StatusOK)
		sock.next("session.restarting")
		sock.next("session.handoff")

		// API keys: create (and its replay), list, roll, revoke.
		keyBody := map[string]any{"type": "secret", "mode": "test"}
		checkRequestBody(t, spec, "POST", "/api/merchants/api-keys", keyBody)
		made := check(callAPI(h, "POST", "/api/merchants/api-keys", h.secretKey, keyBody, "Idempotency-Key", "key-1"), http.StatusCreated).JSON(t)
		replay := check(callAPI(h, "POST", "/api/merchants/api-keys", h.secretKey, keyBody, "Idempotency-Key", "key-1"), http.StatusCreated)
		assert.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
		check(callAPI(h, "GET", "/api/merchants/api-keys", h.secretKey, nil), http.StatusOK)
		rollBody := map[string]any{"graceSeconds": 60}
		checkRequestBody(t, spec, "POST", "/api/merchants/api-keys/{id}/roll", rollBody)
		rolled := check(callAPI(h, "POST", "/api/merchants/api-keys/"+made["id"].(string)+"/roll", h.secretKey, rollBody), http.StatusCreated).JSON(t)
		check(callAPI(h, "POST", "/api/merchants/api-keys/"+rolled["id"].(string)+"/roll", h.secretKey, nil), http.StatusCreated)
		check(callAPI(h, "DELETE", "/api/merchants/api-keys/"+rolled["id"].(string), h.secretKey, nil), http.StatusOK)

		// VCC's side: a token from /oauth/token, then the webhook.
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {vccHookClient}, "client_secret": {vccHookSecret}}
		tok := check(callAPI(h, "POST", "/oauth/token", "", form.Encode(), "Content-Type", "application/x-www-form-urlencoded"), http.StatusOK).JSON(t)
		hook := map[string]any{"sessionGuid": restarted.VCC.SessionGUID, "sessionState": "Finished",
			"paymentResultData": map[string]any{"decision": "ACCEPT", "Amount": "4999", "Currency": "EUR"}}
		checkRequestBody(t, spec, "POST", "/v1/webhooks/vcc", hook)
		check(callAPI(h, "POST", "/v1/webhooks/vcc", tok["access_token"].(string), hook), http.StatusOK)

		// Operations and documentation.
		check(callAPI(h, "GET", "/healthz", "", nil), http.StatusOK)
		check(callAPI(h, "GET", "/readyz", "", nil), http.StatusOK)
		check(callAPI(h, "GET", "/docs/error-codes", "", nil), http.StatusOK)
		check(callAPI(h, "GET", "/openapi.json", "", nil), http.StatusOK)
		check(callAPI(h, "GET", "/static/style.css", "", nil), http.StatusOK)
		check(callAPI(h, "GET", "/static/no-such-file.js", "", nil), http.StatusBadRequest)

		// CORS preflights.
		preflight := []string{"Origin", testOrigin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type, x-agent-token"}
		check(callAPI(h, "OPTIONS", "/v1/sessions", "", nil, preflight...), http.StatusNoContent)
		check(callAPI(h, "OPTIONS", "/v1/sessions/"+mine.ID+"/restart", "", nil, preflight...), http.StatusNoContent)
		check(callAPI(h, "OPTIONS", "/v1/sessions", "", nil, "Origin", "https://phish.example", "Access-Control-Request-Method", "POST"), http.StatusForbidden)
		check(callAPI(h, "OPTIONS", "/v1/sessions", "", nil, "Origin", testOrigin), http.StatusBadRequest)

		// More refusals, on endpoints the per-code table below does not reach.
		wsPath := "/v1/ws?key=" + url.QueryEscape(h.publishableKey)
		for _, c := range []struct {
			call   apiCall
			status int
		}{
			{callAPI(h, "GET", "/v1/ws", "", nil, "Origin", testOrigin), http.StatusUnauthorized},
			{callAPI(h, "GET", wsPath, "", nil, "Origin", testOrigin), http.StatusBadRequest},
			{callAPI(h, "GET", wsPath, "", nil, "Origin", "https://phish.example"), http.StatusForbidden},
			{callAPI(h, "GET", "/v1/ws?key="+url.QueryEscape(h.secretKey), "", nil, "Origin", testOrigin), http.StatusForbidden},
			{callAPI(h, "POST", "/v1/sessions/vp_cs_test_AAAAAAAAAAAAAAAA/cancel", h.secretKey, nil), http.StatusNotFound},
			{callAPI(h, "POST", "/v1/sessions/"+rich.ID+"/restart", h.secretKey, nil), http.StatusConflict},
			{callAPI(h, "POST", "/v1/sessions/"+rich.ID+"/cancel", h.secretKey, `{"reason":"x"}`), http.StatusBadRequest},
			{callAPI(h, "GET", "/v1/sessions?limit=500", h.secretKey, nil), http.StatusBadRequest},
			{callAPI(h, "POST", "/v1/agent_tokens", h.secretKey, map[string]any{"agentId": "a", "ttlSeconds": 5}), http.StatusBadRequest},
			{callAPI(h, "POST", "/v1/agent_tokens", h.publishableKey, map[string]any{"agentId": "a"}), http.StatusForbidden},
			{callAPI(h, "POST", "/api/merchants/api-keys", h.secretKey, map[string]any{"type": "secret"}), http.StatusBadRequest},
			{callAPI(h, "POST", "/api/merchants/api-keys/key_AAAAAAAAAAAAAAAA/roll", h.secretKey, nil), http.StatusBadRequest},
			{callAPI(h, "DELETE", "/api/merchants/api-keys/key_AAAAAAAAAAAAAAAA", h.secretKey, nil), http.StatusBadRequest},
			{callAPI(h, "POST", "/oauth/token", "", url.Values{"grant_type": {"password"}}.Encode(), "Content-Type", "application/x-www-form-urlencoded"), http.StatusBadRequest},
			{callAPI(h, "POST", "/oauth/token", "", url.Values{"grant_type": {"client_credentials"}}.Encode(), "Content-Type", "application/x-www-form-urlencoded"), http.StatusUnauthorized},
			{callAPI(h, "POST", "/v1/webhooks/vcc", "", `{"sessionGuid":"x"}`), http.StatusUnauthorized},
			{callAPI(h, "POST", "/v1/webhooks/vcc", tok["access_token"].(string), `{"nothing":1}`), http.StatusBadRequest},
		} {
			check(c.call, c.status)
		}
		h.logs.AssertNoSecrets(t, h.secretKey, token, vccHookSecret)
	})

	t.Run("every error code", func(t *testing.T) {
		for _, tt := range errorRecipes() {
			t.Run(string(tt.code), func(t *testing.T) {
				var configure []func(*harnessConfig)
				if tt.configure != nil {
					configure = append(configure, tt.configure)
				}
				h := newHarness(t, configure...)
				c := tt.request(t, h)
				assertErrorEnvelope(t, c.r, bridge.Info(tt.code).Status, tt.code)
				checkResponse(t, spec, c.method, c.path, c.r)
			})
		}
	})
}

// errorRecipe reaches one error code through a real request.
type errorRecipe struct {
	code      bridge.Code
	configure func(*harnessConfig)
	request   func(t *testing.T, h *harness) apiCall
}

// errorRecipes are the recipes of codes_test.go's TestEveryErrorCode, keeping the request made.
func errorRecipes() []errorRecipe {
	createBody := map[string]any{"agentId": "agent-1", "amount": 1240, "currency": "GBP"}
	recipes := []errorRecipe{
		{code: bridge.CodeAuthMissingBearer, request: func(t *testing.T, h *harness) apiCall {
			return callAPI(h, "GET", "/v1/sessions", "", nil)
		}},
		{code: bridge.CodeAuthInvalidKey, request: func(t *testing.T, h *harness) apiCall {
			return callAPI(h, "GET", "/v1/sessions", "vp_sk_test_"+strings.Repeat("Z", 32), nil)
		}},
		{code: bridge.CodeAuthKeyExpired, request: func(t *testing.T, h *harness) apiCall {
			made := h.do("POST", "/api/merchants/api-keys", h.secretKey, map[string]any{"type": "secret", "mode": "test"}).JSON(t)
			require.Equal(t, http.StatusOK, h.do("DELETE", "/api/merchants/api-keys/"+made["id"].(string), h.secretKey, nil).Status)
			return callAPI(h, "GET", "/v1/sessions", made["key"].(string), nil)
		}},
		{code: bridge.CodeAuthKeyTypeForbidden, request: func(t *testing.T, h *harness) apiCall {
			return callAPI(h, "GET", "/v1/sessions", h.publishableKey, nil)
		}},
		{code: bridge.CodeAuthMerchantInactive,
			configure: func(c *harnessConfig) {
				c.others = append(c.others, &bridge.Merchant{ID: "dormant", Status: bridge.MerchantInactive})
			},
			request: func(t *testing.T, h *harness) apiCall {
				return callAPI(h, "GET", "/v1/sessions", storedKey(t, h, "dormant", bridge.KeySecret, bridge.ModeTest), nil)
			}},
		{code: bridge.CodeMerchantNotOnboarded,
			configure: func(c *harnessConfig) {
				c.others = append(c.others, &bridge.Merchant{ID: "review", Status: bridge.MerchantPendingApproval})
			},
			request: func(t *testing.T, h *harness) apiCall {
				live := storedKey(t, h, "review", bridge.KeySecret, bridge.ModeLive)
				return callAPI(h, "POST", "/api/merchants/api-keys", live, map[string]any{"type": "secret", "mode": "live"})
			}},
		{code: bridge.CodeAuthServiceUnavailable, request: func(t *testing.T, h *harness) apiCall {
			require.NoError(t, h.store.Close())
			return callAPI(h, "GET", "/v1/sessions", h.secretKey, nil)
		}},
		{code: bridge.CodeSessionNotFound, request: func(t *testing.T, h *harness) apiCall {
			return callAPI(h, "GET", "/v1/sessions/vp_cs_test_AAAAAAAAAAAAAAAA", h.secretKey, nil)
		}},
		{code: bridge.CodeSessionExpired, request: func(t *testing.T, h *harness) apiCall {
			s := h.createSession("agent-1", map[string]any{"expiresIn": 300})
			h.clock.Advance(5 * time.Minute)
			return callAPI(h, "POST", "/v1/sessions/"+s.ID+"/cancel", h.secretKey, nil)
		}},
		{code: bridge.CodeSessionWrongState, request: func(t *testing.T, h *harness) apiCall {
			s := h.createSession("agent-1", nil)
			h.do("POST", "/v1/sessions/"+s.ID+"/cancel", h.secretKey, nil)
			return callAPI(h, "POST", "/v1/sessions/"+s.ID+"/cancel", h.secretKey, nil)
		}},
		{code: bridge.CodeSessionIntegrityError, request: func(t *testing.T, h *harness) apiCall {
			s := h.createSession("agent-1", nil)
			_, err := h.store.UpdateSession(context.Background(), s.ID, func(x *bridge.Session, _ *bridge.Outbox) error {
				x.Attempts[0].SealedTokens[len(x.Attempts[0].SealedTokens)-1] ^= 0xff
				return nil
			})
			require.NoError(t, err)
			return callAPI(h, "GET", "/v1/sessions/"+s.ID, h.secretKey, nil)
		}},
		{code: bridge.CodeValidationError, request: func(t *testing.T, h *harness) apiCall {
			return callAPI(h, "POST", "/v1/sessions", h.secretKey, `{"agentId":"agent-1","amount":"1240","currency":"GBP"}`)
		}},
		{code: bridge.CodeValidationMissingField, request: func(t *testing.T, h *harness) apiCall {
			return callAPI(h, "POST", "/v1/sessions", h.secretKey, map[string]any{"agentId": "agent-1", "amount": 1240})
		}},
		{code: bridge.CodeValidationInvalidAmount, request: func(t *testing.T, h *harness) apiCall {
			return callAPI(h, "POST", "/v1/sessions", h.secretKey, map[string]any{"agentId": "agent-1", "amount": 0, "currency": "GBP"})
		}},
		{code: bridge.CodeMerchantNotConfigured,
			configure: func(c *harnessConfig) {
				c.others = append(c.others, &bridge.Merchant{ID: "fresh", Status: bridge.MerchantActive})
			},
			request: func(t *testing.T, h *harness) apiCall {
				return callAPI(h, "POST", "/v1/sessions", storedKey(t, h, "fresh", bridge.KeySecret, bridge.ModeTest), createBody)
			}},
		{code: bridge.CodeRateLimitExceeded,
			configure: func(c *harnessConfig) { c.server.PerIPLimit = web.RateLimit{Limit: 1, Window: time.Minute} },
			request: func(t *testing.T, h *harness) apiCall {
				h.do("GET", "/v1/sessions", h.secretKey, nil)
				return callAPI(h, "GET", "/v1/sessions", h.secretKey, nil)
			}},
		{code: bridge.CodeRateLimitExceededPerKey,
			configure: func(c *harnessConfig) { c.server.PerKeyLimit = web.RateLimit{Limit: 1, Window: time.Minute} },
			request: func(t *testing.T, h *harness) apiCall {
				h.createSession("agent-1", nil)
				return callAPI(h, "POST", "/v1/sessions", h.secretKey, createBody)
			}},
		{code: bridge.CodeProviderUnavailable, request: func(t *testing.T, h *harness) apiCall {
			h.control("PUT", "/_control/faults", map[string]any{"create": "http_503"})
			return callAPI(h, "POST", "/v1/sessions", h.secretKey, createBody)
		}},
		{code: bridge.CodeProviderAttestationFailed,
			configure: func(c *harnessConfig) { c.service.MaxAttempts = 1 },
			request: func(t *testing.T, h *harness) apiCall {
				s := h.createSession("agent-1", nil)
				return callAPI(h, "POST", "/v1/sessions/"+s.ID+"/restart", h.secretKey, nil)
			}},
		{code: bridge.CodeProviderChargeFailed, request: func(t *testing.T, h *harness) apiCall {
			s := h.createSession("agent-1", nil)
			h.control("POST", "/_control/sessions/"+s.VCC.SessionGUID+"/complete", map[string]any{"decision": "REJECT"})
			return callAPI(h, "POST", "/v1/sessions/"+s.ID+"/restart", h.secretKey, nil)
		}},
		{code: bridge.CodeInternalError, request: func(t *testing.T, h *harness) apiCall {
			// The store fails while VCC is answering: the session cannot be recorded.
			h.control("PUT", "/_control/faults", map[string]any{"latencyMs": 300})
			done := make(chan apiCall, 1)
			go func() { done <- callAPI(h, "POST", "/v1/sessions", h.secretKey, createBody) }()
			require.Eventually(t, func() bool { return h.vcc.Stats().CreateSession == 1 }, eventWait, time.Millisecond)
			require.NoError(t, h.store.Close())
			return <-done
		}},
		{code: bridge.CodeWebhookMissingSignature,
			configure: func(c *harnessConfig) { c.merchant.VCCWebhook.SigningSecret = "vcc-signing-secret" },
			request: func(t *testing.T, h *harness) apiCall {
				return callAPI(h, "POST", "/v1/webhooks/vcc", "", `{"sessionGuid":"x"}`)
			}},
		{code: bridge.CodeWebhookInvalidSignature,
			configure: func(c *harnessConfig) { c.merchant.VCCWebhook.SigningSecret = "vcc-signing-secret" },
			request: func(t *testing.T, h *harness) apiCall {
				return callAPI(h, "POST", "/v1/webhooks/vcc", "vp_wt_forged.token", `{"sessionGuid":"x"}`)
			}},
		{code: bridge.CodeWebhookNotConfigured, request: func(t *testing.T, h *harness) apiCall {
			return callAPI(h, "POST", "/v1/webhooks/vcc", "", `{"sessionGuid":"x"}`)
		}},
		{code: bridge.CodeOriginForbidden, request: func(t *testing.T, h *harness) apiCall {
			return callAPI(h, "POST", "/v1/sessions", h.publishableKey, createBody,
				"Origin", "https://phish.example", "X-Agent-Token", h.agentToken("agent-1"))
		}},
		{code: bridge.CodeTransactionVerificationFailed, request: func(t *testing.T, h *harness) apiCall {
			s := h.createSession("agent-1", nil)
			h.control("POST", "/_control/sessions/"+s.VCC.SessionGUID+"/complete", map[string]any{"decision": "ACCEPT", "amount": "124"})
			return callAPI(h, "POST", "/v1/sessions/"+s.ID+"/restart", h.secretKey, nil)
		}},
		{code: bridge.CodeUnsupportedMediaType, request: func(t *testing.T, h *harness) apiCall {
			return callAPI(h, "POST", "/v1/sessions", h.secretKey, createBody, "Content-Type", "text/plain")
		}},
	}
	return recipes
}

// TestEveryErrorRecipe keeps the recipe table honest: one row per code, no duplicates.
func TestEveryErrorRecipe(t *testing.T) {
	var codes []bridge.Code
	for _, r := range errorRecipes() {
		codes = append(codes, r.code)
	}
	assert.ElementsMatch(t, bridge.Codes, codes)
}

// TestCreateSessionRequestSchema holds CreateSessionRequest's limits to the server's: for each
// body, the schema accepts it exactly when a dry run does.
func TestCreateSessionRequestSchema(t *testing.T) {
	h := newHarness(t)
	spec, _ := fetchOpenAPI(t, h)
	base := `"agentId":"agent-1","currency":"GBP"`
	items := func(n int, item string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + "]"
	}
	metadata := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf(`"k%d":"v"`, i)
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	tests := []struct {
		name  string
		body  string
		valid bool
	}{
		{"minimal", `{` + base + `,"amount":1240}`, true},
		{"amount min", `{` + base + `,"amount":1}`, true},
		{"amount max", `{` + base + `,"amount":99999999}`, true},
		{"amount zero", `{` + base + `,"amount":0}`, false},
		{"amount negative", `{` + base + `,"amount":-5}`, false},
		{"amount over max", `{` + base + `,"amount":100000000}`, false},
		{"amount fraction", `{` + base + `,"amount":12.5}`, false},
		{"amount string", `{` + base + `,"amount":"1240"}`, false},
		{"amount missing", `{` + base + `}`, false},
		{"currency lower case", `{"agentId":"a","amount":1,"currency":"gbp"}`, true},
		{"currency four letters", `{"agentId":"a","amount":1,"currency":"GBPX"}`, false},
		{"currency two letters", `{"agentId":"a","amount":1,"currency":"GB"}`, false},
		{"currency digits", `{"agentId":"a","amount":1,"currency":"G8P"}`, false},
		{"currency missing", `{"agentId":"a","amount":1}`, false},
		{"country", `{` + base + `,"amount":1,"country":"gb"}`, true},
		{"country three letters", `{` + base + `,"amount":1,"country":"GBR"}`, false},
		{"country digit", `{` + base + `,"amount":1,"country":"G1"}`, false},
		{"channel digital", `{` + base + `,"amount":1,"channel":"digital"}`, true},
		{"channel unknown", `{` + base + `,"amount":1,"channel":"phone"}`, false},
		{"account configuration", `{` + base + `,"amount":1,"accountConfigurationId":2}`, true},
		{"account configuration zero", `{` + base + `,"amount":1,"accountConfigurationId":0}`, false},
		{"reference 255", `{` + base + `,"amount":1,"reference":"` + strings.Repeat("r", 255) + `"}`, true},
		{"reference 256", `{` + base + `,"amount":1,"reference":"` + strings.Repeat("r", 256) + `"}`, false},
		{"agentId 128", `{"agentId":"` + strings.Repeat("a", 128) + `","amount":1,"currency":"GBP"}`, true},
		{"agentId 129", `{"agentId":"` + strings.Repeat("a", 129) + `","amount":1,"currency":"GBP"}`, false},
		{"customer", `{` + base + `,"amount":1,"customer":{"firstName":"Ada","email":"ada@example.com"}}`, true},
		{"customer email", `{` + base + `,"amount":1,"customer":{"email":"nobody"}}`, false},
		{"customer name 256", `{` + base + `,"amount":1,"customer":{"surname":"` + strings.Repeat("s", 256) + `"}}`, false},
		{"customer unknown field", `{` + base + `,"amount":1,"customer":{"shoeSize":9}}`, false},
		{"success url https", `{` + base + `,"amount":1,"successUrl":"https://shop.example/ok"}`, true},
		{"success url http", `{` + base + `,"amount":1,"successUrl":"http://shop.example/ok"}`, false},
		{"cancel url localhost", `{` + base + `,"amount":1,"cancelUrl":"http://localhost:3000/no"}`, true},
		{"line items 100", `{` + base + `,"amount":1,"lineItems":` + items(100, `{"name":"x","quantity":1,"unitAmount":1}`) + `}`, true},
		{"line items 101", `{` + base + `,"amount":1,"lineItems":` + items(101, `{"name":"x","quantity":1,"unitAmount":1}`) + `}`, false},
		{"quantity 9999", `{` + base + `,"amount":1,"lineItems":[{"name":"x","quantity":9999}]}`, true},
		{"quantity 10000", `{` + base + `,"amount":1,"lineItems":[{"name":"x","quantity":10000}]}`, false},
		{"quantity zero", `{` + base + `,"amount":1,"lineItems":[{"name":"x","quantity":0}]}`, false},
		{"unit amount negative", `{` + base + `,"amount":1,"lineItems":[{"name":"x","quantity":1,"unitAmount":-1}]}`, false},
		{"line item without name", `{` + base + `,"amount":1,"lineItems":[{"quantity":1}]}`, false},
		{"metadata 50 keys", `{` + base + `,"amount":1,"metadata":` + metadata(50) + `}`, true},
		{"metadata 51 keys", `{` + base + `,"amount":1,"metadata":` + metadata(51) + `}`, false},
		{"metadata key 40", `{` + base + `,"amount":1,"metadata":{"` + strings.Repeat("k", 40) + `":"v"}}`, true},
		{"metadata key 41", `{` + base + `,"amount":1,"metadata":{"` + strings.Repeat("k", 41) + `":"v"}}`, false},
		{"metadata value 500", `{` + base + `,"amount":1,"metadata":{"note":"` + strings.Repeat("x", 500) + `"}}`, true},
		{"metadata value 501", `{` + base + `,"amount":1,"metadata":{"note":"` + strings.Repeat("x", 501) + `"}}`, false},
		{"metadata value number", `{` + base + `,"amount":1,"metadata":{"n":5}}`, false},
		{"expiresIn 300", `{` + base + `,"amount":1,"expiresIn":300}`, true},
		{"expiresIn 3600", `{` + base + `,"amount":1,"expiresIn":3600}`, true},
		{"expiresIn 299", `{` + base + `,"amount":1,"expiresIn":299}`, false},
		{"expiresIn 3601", `{` + base + `,"amount":1,"expiresIn":3601}`, false},
		{"unknown field", `{` + base + `,"amount":1,"colour":"red"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do("POST", "/v1/sessions?dry_run=true", h.secretKey, tt.body)
			checkResponse(t, spec, "POST", "/v1/sessions?dry_run=true", r)
			require.Contains(t, []int{http.StatusOK, http.StatusBadRequest}, r.Status, "%s", r.Body)
			assert.Equal(t, tt.valid, r.Status == http.StatusOK, "server: %s", r.Body)
			err := spec.validate(t, "/components/schemas/CreateSessionRequest", []byte(tt.body))
			assert.Equal(t, tt.valid, err == nil, "schema: %v", err)
		})
	}
}
