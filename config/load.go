package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FieldError is one problem with one configuration key, or with the file's YAML itself (Path
// empty). Problem never quotes a secret.
type FieldError struct {
	File    string // the file, when the configuration came from one (Load)
	Path    string // key path, such as merchants[0].vcc.tokenUrl; empty for a YAML syntax error
	Line    int    // line in the file, when known
	Problem string
}

// Error implements error: "path: problem", led by "file:line: " as compilers print it when the
// file is known (editors jump there), or by "line N: " when only the line is.
func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Problem)
	return b.String()
}

// Load reads the YAML file at path and returns the configuration it describes; see Parse. Every
// problem names the file, and the line of its key whenever the file has that key (a problem with
// a value the file leaves to its default has no line).
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data, getenv)
	if err != nil {
		return nil, inFile(err, path, data)
	}
	return c, nil
}

// Locate names the file path in every problem of err, with the line of its key when the file has
// it, as Load does: for problems found after loading, such as CheckServable's. Nil stays nil.
func Locate(err error, path string) error {
	if err == nil {
		return nil
	}
	data, _ := os.ReadFile(path) // unreadable now: the problems keep no line
	return inFile(err, path, data)
}

// inFile names file in every problem of err and finds the line of each that has none. A problem
// that is not a *FieldError is led by the file's name.
func inFile(err error, file string, data []byte) error {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		doc = yaml.Node{}
	}
	var errs []error
	for _, e := range unjoin(err) {
		var fe *FieldError
		if !errors.As(e, &fe) {
			errs = append(errs, fmt.Errorf("%s: %w", file, e))
			continue
		}
		located := *fe
		located.File = file
		if located.Line == 0 {
			located.Line = lineOf(&doc, located.Path)
		}
		errs = append(errs, &located)
	}
	return errors.Join(errs...)
}

// unjoin flattens errors joined with errors.Join.
func unjoin(err error) []error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

// lineOf returns the line of the deepest node of doc on a key path such as
// merchants[1].vcc.gateways[2].profile: the key itself when the file has it, otherwise the
// nearest enclosing key or list item the file has (merchants[0] for a missing
// merchants[0].id), or 0 when the file has none of it.
func lineOf(doc *yaml.Node, path string) int {
	n := doc
	for n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n == nil || path == "" {
		return 0
	}
	line := 0
	for _, part := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(part, "[")
		steps := []string{name}
		for rest != "" { // [0][1]: each index its own step
			idx, after, _ := strings.Cut(rest, "]")
			steps = append(steps, "["+idx)
			rest = strings.TrimPrefix(after, "[")
		}
		for _, step := range steps {
			for n.Kind == yaml.AliasNode {
				n = n.Alias
			}
			var next *yaml.Node
			switch {
			case strings.HasPrefix(step, "[") && n.Kind == yaml.SequenceNode:
				if i, err := strconv.Atoi(step[1:]); err == nil && i >= 0 && i < len(n.Content) {
					next = n.Content[i]
				}
			case n.Kind == yaml.MappingNode:
				key := strings.TrimPrefix(step, "[") // a map key: gateways[2]
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == key {
						line, next = n.Content[i].Line, n.Content[i+1]
						break
					}
				}
			}
			if next == nil {
				return line
			}
			if strings.HasPrefix(step, "[") && n.Kind == yaml.SequenceNode {
				line = next.Line
			}
			n = next
		}
	}
	return line
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
		}
		se := syntaxError(data, err)
		if bytes.Contains(data, []byte("${")) {
			// In a flow mapping, {secret: ${X}} ends the plain scalar at the first brace.
			se.Problem += ` (quote ${VAR} references inside {...} or [...]: "${VAR}")`
		}
		return nil, se
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, syntaxError(data, err)
		}
		return nil, &FieldError{Line: next.Line, Problem: "a second YAML document; the file must hold one"}
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
	case t.Kind() == reflect.Pointer:
		explainNode(n, t.Elem(), path, errs) // frameAnnouncement: checked as what it points to
	case t.Kind() == reflect.Map && t.Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			bad(n.Line, "must be a mapping")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			keyPath := fmt.Sprintf("%s[%s]", path, k.Value)
			if k.Decode(reflect.New(t.Key()).Interface()) != nil {
				*errs = append(*errs, &FieldError{Path: keyPath, Line: k.Line, Problem: "key must be " + describe(t.Key())})
				continue
			}
			explainNode(v, t.Elem(), keyPath, errs)
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

// unknownKey says a key is unknown, suggesting the known key of t closest to it: one it differs
// from only in case (clientID for clientId, the usual slip), else the nearest within a few typing
// slips (listn for listen).
func unknownKey(t reflect.Type, key string) string {
	best, bestDist := "", 0
	for i := range t.NumField() {
		name := yamlName(t.Field(i))
		if strings.EqualFold(name, key) {
			return fmt.Sprintf("unknown key; did you mean %q?", name)
		}
		d := editDistance(strings.ToLower(key), strings.ToLower(name))
		if best == "" || d < bestDist {
			best, bestDist = name, d
		}
	}
	// A slip or two per word, not a different word: title is not name.
	if best != "" && bestDist <= max(1, min(len(key), len(best))/4) {
		return fmt.Sprintf("unknown key; did you mean %q?", best)
	}
	return "unknown key"
}

// editDistance is the optimal string alignment distance between a and b: the insertions,
// deletions, substitutions and swaps of neighbours that turn one into the other (maxAttemps and
// maxAtetmpts are each 1 from maxAttempts).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// d[i][j]: distance between ra[:i] and rb[:j]; three rows suffice for the swap.
	prev2, prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// yamlLine reads the line yaml.v3 puts in its syntax errors ("yaml: line 3: ...").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxError reports YAML that does not parse, at the line where it goes wrong. yaml.v3 names
// the line where the enclosing construct began, and for most parser errors counts it from 0 (an
// unclosed [ on line 4 of a list item begun on line 3 is "line 2"), so the line is found here:
// the first line at which the file, read up to it, fails the same way.
func syntaxError(data []byte, err error) *FieldError {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	for n := 1; n <= len(lines) && n <= 5000; n++ {
		var doc yaml.Node
		dec := yaml.NewDecoder(bytes.NewReader(bytes.Join(lines[:n], nil)))
		var perr error
		for perr == nil {
			perr = dec.Decode(&doc)
		}
		if errors.Is(perr, io.EOF) {
			continue
		}
		if pm := perr.Error(); strings.HasSuffix(pm, ": "+msg) || pm == "yaml: "+msg {
			line = n
			break
		}
	}
	return &FieldError{Line: line, Problem: "YAML: " + msg}
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
