package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// runBackup is `paybridge backup --config F --out FILE [--force]`: a consistent copy of the bbolt
// store, taken through the running server's admin socket or from the file when no server holds
// it. The copy is written to a temporary file beside FILE, fsynced, and only then given FILE's
// name, so FILE is never a partial copy. On PostgreSQL it says to use pg_dump.
func runBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	flags := newFlags("backup", stderr)
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), "usage: paybridge backup --config F --out FILE [--force]\n\n"+
			"A consistent copy of the bbolt store (<dataDir>/paybridge.db), while serve runs or not.\n"+
			"It holds sealed data: keep the master key elsewhere.\n\nFlags:\n")
		flags.PrintDefaults()
	}
	cfgPath := flags.String("config", "", "configuration file (YAML), the one serve runs with")
	out := flags.String("out", "", "file to write the copy to (required)")
	force := flags.Bool("force", false, "replace --out if it exists")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if err := noArgs(flags); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("backup: --out is required")
	}
	cfg, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		return err
	}
	if cfg.Store.Shared() {
		return errPostgresBackup
	}
	if _, err := os.Lstat(*out); err == nil && !*force {
		return fmt.Errorf("backup: %s exists; pass --force to replace it", *out)
	}
	ops, done, err := openAdmin(ctx, cfg)
	if err != nil {
		return err
	}
	defer done()

	dir := filepath.Dir(*out)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(*out)+".tmp-*") // 0600: the copy holds sealed data
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename or link, or left from a failure
	n, err := ops.Backup(ctx, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if *force {
		err = os.Rename(tmp.Name(), *out)
	} else {
		// A link never replaces: a file that appeared meanwhile is kept.
		err = os.Link(tmp.Name(), *out)
		if errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("%s exists; pass --force to replace it", *out)
		}
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // the new name survives a crash too
		_ = d.Sync()
		d.Close()
	}
	via := "from the store file"
	if _, ok := ops.(*socketAdmin); ok {
		via = "through the running server's admin socket"
	}
	fmt.Fprintf(stdout, "wrote %s: %d bytes, a consistent copy of %s taken %s\n", *out, n, filepath.Join(cfg.DataDir, "paybridge.db"), via)
	fmt.Fprintln(stderr, "the copy holds sealed data: keep the master key out of wherever the copy is stored")
	return nil
}
