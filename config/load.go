package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FieldError is one problem with one configuration key. Problem never quotes a secret.
type FieldError struct {
	Path    string // key path, such as merchants[0].vcc.tokenUrl
	Line    int    // line in the file, when known
	Problem string
}

// Error implements error: "path: problem", led by "line N: " when the line is known.
func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Path, e.Problem)
	}
	return e.Path + ": " + e.Problem
}

// Load reads the YAML file at path and returns the configuration it describes; see Parse.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, getenv)
}

// Parse returns the configuration data describes, in this order:
//
//  1. decode the YAML; an unknown key or a value of the wrong type is an error naming its key
//     path and line;
//  2. expand ${VAR} in every string value from getenv ($${ is a literal ${); a variable that is
//     unset or empty is an error naming it and the key path;
//  3. apply the environment overrides for secrets (see EnvMasterKey and MerchantEnvPrefix),
//     which win over the file and are taken verbatim;
//  4. apply defaults, then Validate.
//
// getenv is usually os.Getenv; nil means an empty environment. Several problems are reported
// together, joined with errors.Join; each is a *FieldError when it concerns one key.
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	c, err := decode(data)
	if err != nil {
		return nil, err
	}
	unresolved := expandStrings(reflect.ValueOf(c).Elem(), "", getenv)
	overridden := applyOverrides(c, getenv)
	var errs []error
	for _, u := range unresolved {
		// A secret the environment overrides does not need its file value.
		if !overridden[u.field] {
			errs = append(errs, u.err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decode decodes data on top of the fixed defaults, rejecting unknown keys.
func decode(data []byte) (*Config, error) {
	c := base()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(c)
	switch {
	case errors.Is(err, io.EOF): // an empty file: every default
		return c, nil
	case err != nil:
		var typeErr *yaml.TypeError
		if errors.As(err, &typeErr) {
			if errs := explain(data); len(errs) > 0 {
				return nil, errors.Join(errs...)
			}
		} else if bytes.Contains(data, []byte("${")) {
			// In a flow mapping, {secret: ${X}} ends the plain scalar at the first brace.
			return nil, fmt.Errorf("config: %w (quote ${VAR} references inside {...} or [...]: \"${VAR}\")", err)
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		return nil, fmt.Errorf("config: line %d: a second YAML document; the file must hold one", next.Line)
	}
	return c, nil
}

// explain walks a document that failed to decode and reports every unknown key and every value
// of the wrong shape by key path and line. yaml.v3's own messages name Go types and quote the
// offending value, which may be a secret (`webhook: whsec_...` instead of a mapping).
func explain(data []byte) []error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil
	}
	var errs []error
	explainNode(&doc, reflect.TypeFor[Config](), "", &errs)
	return errs
}

func explainNode(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	for n.Kind == yaml.DocumentNode || n.Kind == yaml.AliasNode {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		} else if len(n.Content) == 0 {
			return
		} else {
			n = n.Content[0]
		}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // leaves the default in place
	}
	bad := func(line int, problem string) {
		if path == "" {
			path = "(document)"
		}
		*errs = append(*errs, &FieldError{Path: path, Line: line, Problem: problem})
	}
	switch {
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			bad(n.Line, "must be a mapping")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" { // <<: *alias or <<: [*a, *b]
				if v.Kind == yaml.SequenceNode {
					for _, item := range v.Content {
						explainNode(item, t, path, errs)
					}
				} else {
					explainNode(v, t, path, errs)
				}
				continue
			}
			f, ok := fieldByKey(t, k.Value)
			if !ok {
				*errs = append(*errs, &FieldError{Path: join(path, k.Value), Line: k.Line, Problem: unknownKey(t, k.Value)})
				continue
			}
			explainNode(v, f.Type, join(path, k.Value), errs)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			bad(n.Line, "must be a list")
			return
		}
		for i, item := range n.Content {
			explainNode(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	default:
		if n.Kind != yaml.ScalarNode || n.Decode(reflect.New(t).Interface()) != nil {
			bad(n.Line, "must be "+describe(t))
		}
	}
}

// unknownKey says a key is unknown, suggesting the known one it differs from only in case
// (clientID for clientId is the usual slip).
func unknownKey(t reflect.Type, key string) string {
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); strings.EqualFold(name, key) {
			return fmt.Sprintf("unknown key; did you mean %q?", name)
		}
	}
	return "unknown key"
}

// describe names what a value of type t looks like in YAML.
func describe(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "a duration such as 500ms, 30s, 15m or 24h"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Int:
		return "a whole number"
	case t.Kind() == reflect.Slice:
		return "a list"
	case t.Kind() == reflect.Struct:
		return "a mapping"
	}
	return "a " + t.String()
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); yamlName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// yamlName is the key a struct field has in the file.
func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// unresolvedRef is a string value whose ${VAR} references could not be expanded.
type unresolvedRef struct {
	field *string
	err   error
}

// expandStrings expands ${VAR} in every string reachable from v, a struct, in field order.
func expandStrings(v reflect.Value, path string, getenv func(string) string) []unresolvedRef {
	var out []unresolvedRef
	expandOne := func(s *string, path string) {
		var problems []string
		*s, problems = expand(*s, getenv)
		for _, p := range problems {
			out = append(out, unresolvedRef{field: s, err: &FieldError{Path: path, Problem: p}})
		}
	}
	t := v.Type()
	for i := range t.NumField() {
		fv, fpath := v.Field(i), join(path, yamlName(t.Field(i)))
		switch fv.Kind() {
		case reflect.String:
			expandOne(fv.Addr().Interface().(*string), fpath)
		case reflect.Struct:
			out = append(out, expandStrings(fv, fpath, getenv)...)
		case reflect.Slice:
			for j := range fv.Len() {
				ev, epath := fv.Index(j), fmt.Sprintf("%s[%d]", fpath, j)
				switch ev.Kind() {
				case reflect.String:
					expandOne(ev.Addr().Interface().(*string), epath)
				case reflect.Struct:
					out = append(out, expandStrings(ev, epath, getenv)...)
				}
			}
		}
	}
	return out
}

// expand replaces each ${NAME} in s by getenv(NAME) and each $${ by a literal ${. It returns the
// problems found: unset variables by name, malformed references without quoting them (the value
// may be a secret that happens to hold "${").
func expand(s string, getenv func(string) string) (string, []string) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	var problems []string
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 || !validEnvName(s[i+2:i+end]) {
				problems = append(problems, "malformed ${...} reference: want ${NAME} with NAME of letters, digits and _ (write $${ for a literal ${)")
				return s, problems
			}
			name := s[i+2 : i+end]
			if val := getenv(name); val != "" {
				b.WriteString(val)
			} else {
				problems = append(problems, fmt.Sprintf("environment variable %s is not set", name))
			}
			i += end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), problems
}

func validEnvName(name string) bool {
	if name == "" || '0' <= name[0] && name[0] <= '9' {
		return false
	}
	for _, c := range name {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// EnvMasterKey overrides masterKey.
const EnvMasterKey = "PAYBRIDGE_MASTER_KEY"

// EnvStoreURL overrides store.url.
const EnvStoreURL = "PAYBRIDGE_STORE_URL"

// Suffixes of the per-merchant environment overrides; see MerchantEnvPrefix.
const (
	EnvVCCClientSecret         = "VCC_CLIENT_SECRET"          // vcc.clientSecret
	EnvWebhookSecret           = "WEBHOOK_SECRET"             // webhook.secret
	EnvWebhookPreviousSecret   = "WEBHOOK_PREVIOUS_SECRET"    // webhook.previousSecret
	EnvVCCWebhookClientSecret  = "VCC_WEBHOOK_CLIENT_SECRET"  // vccWebhook.clientSecret
	EnvVCCWebhookSigningSecret = "VCC_WEBHOOK_SIGNING_SECRET" // vccWebhook.signingSecret
)

// MerchantEnvPrefix returns the prefix of a merchant's environment overrides:
// PAYBRIDGE_MERCHANT_ then the merchant ID upper-cased with every character other than A-Z and
// 0-9 turned into _, then _. Merchant acme-uk's VCC client secret comes from
// PAYBRIDGE_MERCHANT_ACME_UK_VCC_CLIENT_SECRET.
func MerchantEnvPrefix(id string) string {
	b := []byte(strings.ToUpper(id))
	for i, c := range b {
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			b[i] = '_'
		}
	}
	return "PAYBRIDGE_MERCHANT_" + string(b) + "_"
}

// applyOverrides sets every secret whose environment variable is set (non-empty) and returns
// the fields it set.
func applyOverrides(c *Config, getenv func(string) string) map[*string]bool {
	set := map[*string]bool{}
	override := func(field *string, name string) {
		if v := getenv(name); v != "" {
			*field = v
			set[field] = true
		}
	}
	override(&c.MasterKey, EnvMasterKey)
	override(&c.Store.URL, EnvStoreURL)
	for i := range c.Merchants {
		m := &c.Merchants[i]
		if m.ID == "" {
			continue
		}
		prefix := MerchantEnvPrefix(m.ID)
		override(&m.VCC.ClientSecret, prefix+EnvVCCClientSecret)
		override(&m.Webhook.Secret, prefix+EnvWebhookSecret)
		override(&m.Webhook.PreviousSecret, prefix+EnvWebhookPreviousSecret)
		override(&m.VCCWebhook.ClientSecret, prefix+EnvVCCWebhookClientSecret)
		override(&m.VCCWebhook.SigningSecret, prefix+EnvVCCWebhookSigningSecret)
	}
	return set
}
