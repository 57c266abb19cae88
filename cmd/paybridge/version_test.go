package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersionLine(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var out []debug.BuildSetting
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	for _, tt := range []struct {
		name      string
		ldVersion string
		info      *debug.BuildInfo
		want      string
	}{
		{"release build from a checkout", "v1.4.0",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261126-0123456789ab"},
				Settings: vcs("vcs", "git", "vcs.revision", rev, "vcs.time", "2026-11-26T03:33:17Z", "vcs.modified", "false")},
			"paybridge v1.4.0 (0123456789ab, 2026-11-26T03:33:17Z) go1.26.8"},
		{"uncommitted changes", "",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261126-0123456789ab+dirty"},
				Settings: vcs("vcs.revision", rev, "vcs.time", "2026-11-26T03:33:17Z", "vcs.modified", "true")},
			"paybridge v0.0.0-20261126-0123456789ab+dirty (0123456789ab+dirty, 2026-11-26T03:33:17Z) go1.26.8"},
		{"revision without a time", "",
			&debug.BuildInfo{GoVersion: "go1.26.8", Settings: vcs("vcs.revision", rev)},
			"paybridge (devel) (0123456789ab) go1.26.8"},
		{"docker build: version, no .git", "v1.4.0",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"paybridge v1.4.0 (no VCS information in this build) go1.26.8"},
		{"go run, -buildvcs=false", "",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs("-buildmode", "exe")},
			"paybridge (devel) (no VCS information in this build) go1.26.8"},
		{"no build information at all", "", nil, "paybridge (devel) (no build information)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, versionLine(tt.ldVersion, tt.info))
		})
	}
}

// TestVersionOfBuiltBinary builds paybridge from a git checkout of this source tree, as an operator
// would, and reads `paybridge version`: the commit and its time as git has them, +dirty once the
// tree has uncommitted changes, and an honest line for a build without VCS information. The tree is
// copied into a fresh repository because the Go command records no VCS information in a git
// worktree (whose .git is a file), which is how this repository is often checked out.
func TestVersionOfBuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds paybridge three times (seconds each on a warm cache); not in -short")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	src := t.TempDir()
	files, err := exec.Command("git", "-C", deployRepoRoot, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	require.NoError(t, err)
	for _, name := range strings.Split(strings.TrimSuffix(string(files), "\x00"), "\x00") {
		data, err := os.ReadFile(filepath.Join(deployRepoRoot, name))
		if os.IsNotExist(err) {
			continue // deleted in the work tree, not yet committed
		}
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(src, filepath.Dir(name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(src, name), data, 0o644))
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.com"}, args...)...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "TZ=UTC") // Go records the commit time in UTC
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "version test")
	rev := git("rev-parse", "HEAD")
	when := git("show", "-s", "--format=%cd", "--date=format-local:%Y-%m-%dT%H:%M:%SZ", "HEAD")

	// build runs go build as an operator would; -trimpath lets the build cache serve the copy.
	build := func(args ...string) string {
		bin := filepath.Join(t.TempDir(), "paybridge")
		cmd := exec.Command("go", append(append([]string{"build", "-trimpath", "-o", bin}, args...), "./cmd/paybridge")...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=true") // as by default: not a -buildvcs=false this machine may set
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go build: %s", out)
		out, err = exec.Command(bin, "version").Output()
		require.NoError(t, err)
		return string(out)
	}
	goVersion := regexp.QuoteMeta(runtime.Version())

	got := build("-ldflags", "-X main.version=v9.8.7")
	assert.Equal(t, "paybridge v9.8.7 ("+rev[:12]+", "+when+") "+runtime.Version()+"\n", got)

	require.NoError(t, os.WriteFile(filepath.Join(src, "uncommitted.txt"), []byte("x"), 0o644))
	got = build()
	assert.Regexp(t, `^paybridge v0\.0\.0-\d{14}-`+rev[:12]+`\+dirty \(`+rev[:12]+`\+dirty, `+regexp.QuoteMeta(when)+`\) `+goVersion+"\n$", got)

	got = build("-buildvcs=false")
	assert.Equal(t, "paybridge (devel) (no VCS information in this build) "+runtime.Version()+"\n", got)
}

// TestVersionCommand: `paybridge version` in-process prints one line with the Go version.
func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"paybridge", "version"}, os.Getenv, &out, &bytes.Buffer{}))
	assert.Regexp(t, `^paybridge \S+ \(.+\) go\S+\n$`, out.String())
}
