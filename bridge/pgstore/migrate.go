package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFiles holds the schema's history, one file per version: NNNN_name.sql. A released
// migration is never edited; a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the advisory lock key every paybridge takes to migrate ("paybridg" in ASCII).
// Advisory locks are per database, so unrelated databases on one cluster do not wait for each
// other.
const migrationLock int64 = 0x7061796272696467

// migration is one embedded schema version.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order, checking that no version is
// there twice.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var list []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_name.sql", e.Name())
		}
		sql, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		list = append(list, migration{version: v, name: e.Name(), sql: string(sql)})
	}
	slices.SortFunc(list, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(list); i++ {
		// A gap is allowed: versions are numbered as they are planned, and one branch may ship
		// its migration before another's lower number lands. Duplicates never are.
		if list[i].version == list[i-1].version {
			return nil, fmt.Errorf("migration %s: version %d twice", list[i].name, list[i].version)
		}
	}
	return list, nil
}

// Versions returns the schema versions this package embeds, in order.
func Versions() []int {
	list, _ := migrations()
	out := make([]int, len(list))
	for i, m := range list {
		out[i] = m.version
	}
	return out
}

// SchemaVersion is the newest schema version this package knows: its last migration's.
func SchemaVersion() int {
	list, err := migrations()
	if err != nil || len(list) == 0 {
		return 0
	}
	return list[len(list)-1].version
}

// migrate brings the database to the newest schema and returns its version. Everything happens in
// one transaction holding the migration advisory lock: a second node starting at the same time
// waits for the first and then finds nothing to do, and a migration that fails leaves the
// database as it was.
func migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (int, error) {
	list, err := migrations()
	if err != nil {
		return 0, err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // after Commit, a no-op
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return 0, fmt.Errorf("take the migration lock: %w", err)
	}
	// Created under the lock: CREATE TABLE IF NOT EXISTS alone is not safe against a concurrent
	// one (both may see no table and one fails on the catalog's unique index).
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return 0, fmt.Errorf("create schema_migrations: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return 0, fmt.Errorf("read schema_migrations: %w", err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return 0, fmt.Errorf("read schema_migrations: %w", err)
	}
	newest := 0
	if len(list) > 0 {
		newest = list[len(list)-1].version
	}
	known := make(map[int]bool, len(list))
	for _, m := range list {
		known[m.version] = true
	}
	done := make(map[int]bool, len(applied))
	for _, v := range applied {
		switch {
		case int(v) > newest:
			return 0, fmt.Errorf("%w: the database has schema version %d, this paybridge knows up to %d; run a newer paybridge", ErrSchema, v, newest)
		case !known[int(v)]:
			return 0, fmt.Errorf("%w: schema_migrations holds version %d, which this paybridge does not have", ErrSchema, v)
		}
		done[int(v)] = true
	}
	for _, m := range list {
		if done[m.version] {
			continue
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return 0, fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			return 0, fmt.Errorf("record migration %s: %w", m.name, err)
		}
		log.Info("migration applied", "version", m.version, "name", m.name)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit migrations: %w", err)
	}
	if len(list) == 0 {
		return 0, errors.New("no migrations embedded")
	}
	return newest, nil
}
