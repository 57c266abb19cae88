package web

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"unicode/utf8"
)

// secretShape matches anything shaped like a paybridge credential: an API key (vp_sk_, vp_pk_),
// an agent token (vp_at_) or a webhook secret (whsec_) followed by at least six token characters.
// Six, so that documentation of the format ("a vp_sk_test_* key", "vp_at_...") stays readable
// while every real credential (24 or more random characters after the mode) is caught, also cut
// short or pasted somewhere odd by a caller.
var secretShape = regexp.MustCompile(`(vp_sk_|vp_pk_|vp_at_|whsec_)[A-Za-z0-9_.\-]{6,}`)

// redactedMark replaces the secret part of a credential-shaped string; the prefix stays, so a
// reader still sees what kind of credential was there.
const redactedMark = "[redacted]"

// Redact returns s with everything shaped like a paybridge key or token replaced by its prefix
// and "[redacted]".
func Redact(s string) string {
	if !strings.Contains(s, "vp_") && !strings.Contains(s, "whsec_") {
		return s // the common case, without the regexp
	}
	return secretShape.ReplaceAllString(s, "${1}"+redactedMark)
}

// Log field caps. Request input (methods, paths, ids from a socket message) is cut where it is
// logged; logFieldCap is the backstop for every string a record carries, so that no caller can
// make one log line large.
const (
	logFieldCap  = 8 << 10
	capMethod    = 16
	capPath      = 256
	capInputText = 128
)

// capText cuts s to at most n bytes without splitting a UTF-8 sequence, marking the cut.
func capText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// SafeLogHandler wraps h so that no record reaches it with a credential-shaped string in its
// message or in any attribute (strings, errors, Stringers and anything else formatted as text,
// in groups at any depth), and no string longer than 8 KiB. main installs it on the process
// logger and NewServer on the server's, so request input a caller pastes (a key in a path, a
// token in a body key) is never written out.
func SafeLogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(safeHandler); ok {
		return h
	}
	return safeHandler{h}
}

type safeHandler struct{ next slog.Handler }

func (h safeHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h safeHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, safeString(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(safeAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h safeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	safe := make([]slog.Attr, len(as))
	for i, a := range as {
		safe[i] = safeAttr(a)
	}
	return safeHandler{h.next.WithAttrs(safe)}
}

func (h safeHandler) WithGroup(name string) slog.Handler {
	return safeHandler{h.next.WithGroup(safeString(name))}
}

func safeString(s string) string { return capText(Redact(s), logFieldCap) }

// safeAttr redacts and caps one attribute. Values that would be formatted as text (errors,
// Stringers, structs) are formatted here, so what the handler writes is what was checked.
func safeAttr(a slog.Attr) slog.Attr {
	a.Key = safeString(a.Key)
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(safeString(v.String()))
	case slog.KindGroup:
		group := v.Group()
		safe := make([]slog.Attr, len(group))
		for i, g := range group {
			safe[i] = safeAttr(g)
		}
		a.Value = slog.GroupValue(safe...)
	case slog.KindAny:
		a.Value = slog.StringValue(safeString(v.String()))
	default: // numbers, booleans, times, durations: nothing a caller can put a secret in
		a.Value = v
	}
	return a
}
