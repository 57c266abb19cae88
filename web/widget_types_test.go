package web_test

import (
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWidgetTypesServed: the widget's TypeScript declarations are served beside the script, as
// text a browser will not try to play (the system MIME table maps .ts to video or Qt files).
func TestWidgetTypesServed(t *testing.T) {
	h := newHarness(t)
	want, err := os.ReadFile("static/paybridge.d.ts")
	require.NoError(t, err)

	tests := []struct {
		path        string
		contentType string
		body        []byte
	}{
		{"/static/paybridge.d.ts", "application/typescript; charset=utf-8", want},
		{"/static/paybridge.js", "text/javascript; charset=utf-8", nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := h.do(http.MethodGet, tt.path, "", nil)
			require.Equal(t, http.StatusOK, r.Status, string(r.Body))
			assert.Equal(t, tt.contentType, r.Header.Get("Content-Type"))
			if tt.body != nil {
				assert.Equal(t, string(tt.body), string(r.Body))
			}
		})
	}
}

// TestWidgetTypesMatchScript: paybridge.d.ts names exactly the options, events, methods,
// frameCheck values and APIError fields that paybridge.js reads, emits and returns, so neither
// can change without the other. (tsc checks that the declarations are usable; this checks that
// they are the widget's.)
func TestWidgetTypesMatchScript(t *testing.T) {
	js, err := os.ReadFile("static/paybridge.js")
	require.NoError(t, err)
	dts, err := os.ReadFile("static/paybridge.d.ts")
	require.NoError(t, err)
	script, decl := stripComments(string(js)), stripComments(string(dts))

	checkOptions := block(t, script, "function checkOptions(")
	widget := block(t, block(t, script, "function mount("), "return Object.freeze(")
	apiError := block(t, script, "class APIError ")

	tests := []struct {
		name   string
		script []string
		decl   []string
	}{
		{"mount options", matches(checkOptions, `\bo\.(\w+)`), members(block(t, decl, "interface MountOptions "), tsMember)},
		{"events", matches(block(t, script, "const HOST_EVENTS = ["), `"([^"]+)"`), members(block(t, decl, "interface WidgetEventMap "), tsMember)},
		{"widget methods and properties", members(widget, jsMember), members(block(t, decl, "interface Widget "), tsMember)},
		{"frameCheck values", matches(checkOptions, `frameCheck [!=]== "(\w+)"`), matches(block(t, decl, "interface MountOptions "), `frameCheck\?: ([^;]+);`, `"(\w+)"`)},
		{"APIError fields", matches(apiError, `this\.(\w+) =`), members(block(t, decl, "class APIError "), tsMember)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NotEmpty(t, tt.script, "nothing found in paybridge.js: has its shape changed?")
			assert.Equal(t, set(tt.script), set(tt.decl), "paybridge.js (left) and paybridge.d.ts (right) disagree")
		})
	}

	// Every event the script emits by name is one host pages may subscribe to.
	emitted := append(matches(script, `emit\("([^"]+)"`), matches(block(t, script, "const TERMINAL = {"), `: "(\w+)"`)...)
	assert.Subset(t, set(matches(block(t, script, "const HOST_EVENTS = ["), `"([^"]+)"`)), set(emitted))
}

var (
	blockComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	lineComment  = regexp.MustCompile(`(?m)(^|\s)//.*$`)
	// tsMember is a property or method at the start of a line of a declaration block.
	tsMember = regexp.MustCompile(`^\s*(?:readonly\s+)?("[^"]+"|\w+)\??\s*[:(<]`)
	// jsMember is a property or getter at the start of a line of an object literal.
	jsMember = regexp.MustCompile(`^\s*(?:get\s+)?(\w+)\s*[:(]`)
)

// stripComments drops /* */ and // comments (a // after ':' or inside a word, as in a URL,
// stays), so doc text never reads as code.
func stripComments(s string) string {
	return lineComment.ReplaceAllString(blockComment.ReplaceAllString(s, ""), "$1")
}

// block returns the body of the first { or [ at or after the end of start in s, up to its
// closing bracket (brackets of the other kind are not counted).
func block(t *testing.T, s, start string) string {
	t.Helper()
	i := strings.Index(s, start)
	require.GreaterOrEqual(t, i, 0, "%q not found", start)
	open := strings.IndexAny(s[i+len(start)-1:], "{[") + i + len(start) - 1
	opener, closer := s[open], map[byte]byte{'{': '}', '[': ']'}[s[open]]
	depth := 0
	for j := open; j < len(s); j++ {
		switch s[j] {
		case opener:
			depth++
		case closer:
			depth--
			if depth == 0 {
				return s[open+1 : j]
			}
		}
	}
	require.FailNow(t, "unclosed block", "after %q", start)
	return ""
}

// members returns the names re finds at the start of the lines at the top level of body (an
// interface, class or object literal's); a constructor is not a member a caller names.
func members(body string, re *regexp.Regexp) []string {
	var names []string
	depth := 0
	for _, line := range strings.Split(body, "\n") {
		if depth == 0 {
			if m := re.FindStringSubmatch(line); m != nil && m[1] != "constructor" {
				names = append(names, strings.Trim(m[1], `"`))
			}
		}
		depth += strings.Count(line, "{") - strings.Count(line, "}")
	}
	return names
}

// matches returns the first group of every match of the last pattern in s, each earlier pattern
// narrowing s to its own first group first.
func matches(s string, patterns ...string) []string {
	for _, p := range patterns[:len(patterns)-1] {
		m := regexp.MustCompile(p).FindStringSubmatch(s)
		if m == nil {
			return nil
		}
		s = m[1]
	}
	var out []string
	for _, m := range regexp.MustCompile(patterns[len(patterns)-1]).FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// set returns names sorted without repeats.
func set(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}
