// Package pgtest gives tests a fresh, empty PostgreSQL database of their own on the cluster that
// scripts/pg-up starts (scripts/test starts it for the whole suite).
//
// The cluster's URL comes from PAYBRIDGE_TEST_PG_URL. Without it, tests that need PostgreSQL
// skip, saying how to get one; with PAYBRIDGE_REQUIRE_PG=1 (as scripts/test and CI set) they
// fail instead, so a CI run without a database can never pass by skipping.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables read by this package.
const (
	// EnvURL is the URL of a database on the test cluster that may create databases, as
	// scripts/pg-up prints it: postgres://postgres@127.0.0.1:<port>/postgres?sslmode=disable.
	EnvURL = "PAYBRIDGE_TEST_PG_URL"
	// EnvRequire, set to 1, turns the skip without EnvURL into a failure.
	EnvRequire = "PAYBRIDGE_REQUIRE_PG"
)

// AdminURL returns the test cluster's URL, or skips t (fails it under PAYBRIDGE_REQUIRE_PG=1)
// when there is none.
func AdminURL(t testing.TB) string {
	t.Helper()
	raw := os.Getenv(EnvURL)
	if raw != "" {
		return raw
	}
	msg := EnvURL + " is not set: run ./scripts/pg-up and export the line it prints (./scripts/test does both)"
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s=1 but %s", EnvRequire, msg)
	}
	t.Skip("needs PostgreSQL: " + msg)
	return ""
}

// NewDatabase creates an empty database t_<random> on the test cluster, returns its URL (the
// cluster URL with the database name changed, its other parameters kept) and drops it, with every
// connection still open to it, when t ends. Each test having its own database, test packages
// can run in parallel against one cluster.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := AdminURL(t)
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL", EnvURL) // the value may hold a password: not repeated
	}
	name := "t_" + randomHex(8)
	// The admin connection is a plain one: pgxpool's own parameters (pool_max_conns, ...) stay in
	// the returned URL for the store's pool, but a server would refuse them.
	adminURL := *u
	q := adminURL.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	adminURL.RawQuery = q.Encode()
	admin = adminURL.String()

	// Its own short deadline rather than t.Context(), which is already done during Cleanup.
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// FORCE: a store the test forgot to close must not keep its database alive.
		if err := exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// randomHex returns n random bytes in lowercase hex, for names no other test picks.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
