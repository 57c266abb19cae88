package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"syscall"

	"github.com/paybridge/paybridge/config"
	"github.com/paybridge/paybridge/web"
)

// reloader applies a changed configuration file to a running app on SIGHUP: merchants (their
// allowed origins included) and rate limits. Everything else (listen addresses, the store, the
// master key, timeouts, ...) is read once at start: a change to it is logged as needing a
// restart and ignored. A file that does not load leaves the running configuration as it is.
//
// Log lines name what changed and never a secret value: a merchant's changed fields by key
// path, origins and rate limits (not secret) with their values.
type reloader struct {
	app    *app
	path   string
	getenv func(string) string
	logger *slog.Logger
	// running is the configuration in force, as read from the file (before serve derived
	// anything from the bound address): reloads are compared with it.
	running *config.Config
}

// reloadable are the top-level keys a reload applies.
var reloadable = []string{"merchants", "rateLimits"}

// reloadOnSIGHUP reloads the configuration at path on every SIGHUP until ctx ends. running is
// the configuration the app was started with, as loaded. The signal is taken before this
// returns, so a SIGHUP sent once the app listens never stops the process.
func (a *app) reloadOnSIGHUP(ctx context.Context, path string, getenv func(string) string, running *config.Config) {
	r := &reloader{app: a, path: path, getenv: getenv, logger: a.logger, running: running}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				r.reload()
			}
		}
	}()
}

// reload reads the file again and applies what may change while running.
func (r *reloader) reload() {
	next, err := config.Load(r.path, r.getenv)
	if err == nil {
		// What serve refuses to start with, a reload refuses to switch to.
		err = config.Locate(next.CheckServable(), r.path)
	}
	if err != nil {
		r.logger.Error("configuration reload failed: still running the previous configuration",
			"file", r.path, "err", err.Error())
		return
	}
	changes := 0
	for _, key := range changedKeys("", reflect.ValueOf(*r.running), reflect.ValueOf(*next), reloadable...) {
		r.logger.Warn("configuration reload: this change needs a restart; ignored", "file", r.path, "key", key)
	}
	changes += r.rateLimits(next.RateLimits)
	changes += r.merchants(next.Merchants)
	r.running.RateLimits, r.running.Merchants = next.RateLimits, next.Merchants
	r.logger.Info("configuration reloaded", "file", r.path, "changes", changes, "merchants", len(next.Merchants))
}

// rateLimits applies new limits and logs each changed key with its old and new value.
func (r *reloader) rateLimits(next config.RateLimits) int {
	old := r.running.RateLimits
	keys := changedKeys("rateLimits", reflect.ValueOf(old), reflect.ValueOf(next))
	if len(keys) == 0 {
		return 0
	}
	oldV, nextV := reflect.ValueOf(old), reflect.ValueOf(next)
	for _, key := range keys {
		field := fieldByKey(oldV.Type(), strings.TrimPrefix(key, "rateLimits."))
		r.logger.Info("configuration reload: rate limit changed", "key", key,
			"from", fmt.Sprint(oldV.FieldByIndex(field).Interface()), "to", fmt.Sprint(nextV.FieldByIndex(field).Interface()))
	}
	r.app.server.SetRateLimits(
		web.RateLimit{Limit: next.SessionCreatesPerKey, Window: next.SessionCreatesWindow},
		web.RateLimit{Limit: next.PerIP, Window: next.PerIPWindow})
	return len(keys)
}

// merchants replaces the merchant directory and logs each merchant added, removed or changed.
func (r *reloader) merchants(next []config.Merchant) int {
	changes := 0
	old := r.running.Merchants
	find := func(list []config.Merchant, id string) *config.Merchant {
		if i := slices.IndexFunc(list, func(m config.Merchant) bool { return m.ID == id }); i >= 0 {
			return &list[i]
		}
		return nil
	}
	for _, m := range old {
		if find(next, m.ID) == nil {
			changes++
			r.logger.Info("configuration reload: merchant removed; its open sessions settle with its last configuration",
				"merchant", m.ID)
		}
	}
	for _, m := range next {
		before := find(old, m.ID)
		if before == nil {
			changes++
			r.logger.Info("configuration reload: merchant added", "merchant", m.ID, "status", m.Status,
				"allowedOrigins", strings.Join(m.AllowedOrigins, " "))
			continue
		}
		fields := changedKeys("", reflect.ValueOf(*before), reflect.ValueOf(m))
		if len(fields) == 0 {
			continue
		}
		changes++
		// Lists as space-separated text: the process log handler writes attribute values as text.
		attrs := []any{"merchant", m.ID, "fields", strings.Join(fields, " ")}
		if slices.Contains(fields, "allowedOrigins") {
			attrs = append(attrs, "originsAdded", strings.Join(missingFrom(m.AllowedOrigins, before.AllowedOrigins), " "),
				"originsRemoved", strings.Join(missingFrom(before.AllowedOrigins, m.AllowedOrigins), " "))
		}
		r.logger.Info("configuration reload: merchant changed", attrs...)
	}
	if changes > 0 {
		cfg := config.Config{Merchants: next}
		r.app.merchants.Replace(cfg.BridgeMerchants())
	}
	return changes
}

// missingFrom returns the values of a not in b.
func missingFrom(a, b []string) []string {
	var out []string
	for _, v := range a {
		if !slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}

// changedKeys returns the key paths (as written in the file: vcc.clientSecret) where a and b,
// values of one configuration type, differ, leaving out the top-level keys in skip. Structs are
// compared field by field; anything else (a list, a map, a pointer) is one key. Only names are
// returned, never values: many are secrets.
func changedKeys(prefix string, a, b reflect.Value, skip ...string) []string {
	if reflect.DeepEqual(a.Interface(), b.Interface()) {
		return nil
	}
	if a.Kind() != reflect.Struct {
		return []string{prefix}
	}
	var out []string
	for i := range a.NumField() {
		f := a.Type().Field(i)
		name := yamlName(f)
		if !f.IsExported() || slices.Contains(skip, name) {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		out = append(out, changedKeys(key, a.Field(i), b.Field(i))...)
	}
	return out
}

// fieldByKey finds the field of struct type t written as key in the file.
func fieldByKey(t reflect.Type, key string) []int {
	for i := range t.NumField() {
		if yamlName(t.Field(i)) == key {
			return []int{i}
		}
	}
	panic("reload: no field " + key + " in " + t.Name())
}

// yamlName is the key a struct field has in the file.
func yamlName(f reflect.StructField) string {
	if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" {
		return name
	}
	return f.Name
}
