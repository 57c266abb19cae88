package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// The deploy files (Dockerfile, deploy/) checked as far as a machine without a container engine
// or systemd as init allows: the binary is built by the Dockerfile's own `go build` line and
// started with the configurations the deploy files ship, the systemd unit is verified by
// systemd-analyze, and the Kubernetes example's pieces are checked to fit each other and the image.

const deployRepoRoot = "../.."

// dockerfileInfo is what the tests read from the Dockerfile.
type dockerfileInfo struct {
	goVersion  string   // ARG GO_VERSION's default
	buildLine  string   // the RUN line of the build stage that runs go build, without "RUN "
	finalFrom  string   // the last stage's base image
	user       string   // the last USER
	expose     []string // EXPOSE ports
	entrypoint []string
	cmd        []string
}

func readDockerfile(t *testing.T) dockerfileInfo {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(deployRepoRoot, "Dockerfile"))
	require.NoError(t, err)
	var d dockerfileInfo
	text := strings.ReplaceAll(string(raw), "\\\n", " ") // continuation lines join their RUN
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "ARG":
			if v, ok := strings.CutPrefix(rest, "GO_VERSION="); ok {
				d.goVersion = v
			}
		case "RUN":
			if strings.Contains(rest, "go build") {
				require.Empty(t, d.buildLine, "the Dockerfile has more than one go build")
				d.buildLine = rest
			}
		case "FROM":
			d.finalFrom = strings.Fields(rest)[0]
		case "USER":
			d.user = rest
		case "EXPOSE":
			d.expose = append(d.expose, strings.Fields(rest)...)
		case "ENTRYPOINT":
			require.NoError(t, json.Unmarshal([]byte(rest), &d.entrypoint), "ENTRYPOINT must be exec form")
		case "CMD":
			require.NoError(t, json.Unmarshal([]byte(rest), &d.cmd), "CMD must be exec form")
		}
	}
	require.NotEmpty(t, d.buildLine, "no RUN ... go build in the Dockerfile")
	return d
}

// TestDockerfile: the image is a static, trimmed binary with its version, run as a non-root user
// on a base without a shell, and its Go is go.mod's.
func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	mod, err := os.ReadFile(filepath.Join(deployRepoRoot, "go.mod"))
	require.NoError(t, err)
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	require.NotNil(t, goLine)

	tests := []struct {
		name string
		ok   bool
		got  any
	}{
		{"cgo off (a static binary)", strings.Contains(d.buildLine, "CGO_ENABLED=0"), d.buildLine},
		{"-trimpath", strings.Contains(d.buildLine, "-trimpath"), d.buildLine},
		{"version via -ldflags", strings.Contains(d.buildLine, "-X main.version=${VERSION}"), d.buildLine},
		{"builds cmd/paybridge to /out/paybridge", strings.Contains(d.buildLine, "-o /out/paybridge ./cmd/paybridge"), d.buildLine},
		{"Go of go.mod", d.goVersion == string(goLine[1]), d.goVersion},
		{"distroless static or scratch (no shell)", strings.HasPrefix(d.finalFrom, "gcr.io/distroless/static") || d.finalFrom == "scratch", d.finalFrom},
		{"non-root user", d.user != "" && !slices.Contains([]string{"0", "root", "0:0", "root:root"}, d.user), d.user},
		{"EXPOSE 8080", slices.Equal(d.expose, []string{"8080"}), d.expose},
		{"ENTRYPOINT", slices.Equal(d.entrypoint, []string{"/paybridge"}), d.entrypoint},
		{"CMD", slices.Equal(d.cmd, []string{"serve", "--config", "/etc/paybridge/paybridge.yaml"}), d.cmd},
	}
	for _, tt := range tests {
		assert.True(t, tt.ok, "%s: got %v", tt.name, tt.got)
	}
}

// dockerBuild builds paybridge into a fresh directory by running the Dockerfile's go build line
// through sh, as the build stage does (WORKDIR is the source root), with only the output path
// moved out of /out. VERSION is set as --build-arg would; TARGETOS and TARGETARCH are empty, as
// with a builder that does not set them. After the first build the Go cache makes it a link.
func dockerBuild(t *testing.T) (bin, version string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds paybridge as the Dockerfile does (a minute or two on a cold cache); not in -short")
	}
	const v = "v0.0.0-deploytest"
	d := readDockerfile(t)
	bin = filepath.Join(t.TempDir(), "paybridge")
	cmd := exec.Command("sh", "-c", strings.Replace(d.buildLine, "/out/paybridge", bin, 1))
	cmd.Dir = deployRepoRoot
	cmd.Env = append(os.Environ(), "VERSION="+v, "TARGETOS=", "TARGETARCH=")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s\n%s", d.buildLine, out)
	return bin, v
}

// TestDockerBuildBinary: what the Dockerfile builds is static, trimmed, and knows its version.
func TestDockerBuildBinary(t *testing.T) {
	bin, version := dockerBuild(t)

	f, err := elf.Open(bin)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "the binary asks for a dynamic loader: not static")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs, "the binary links shared libraries")

	raw, err := os.ReadFile(bin)
	require.NoError(t, err)
	abs, err := filepath.Abs(deployRepoRoot)
	require.NoError(t, err)
	assert.False(t, bytes.Contains(raw, []byte(abs+"/")), "the build machine's source path %s is in the binary: -trimpath is not applied", abs)

	out, err := exec.Command(bin, "version").Output()
	require.NoError(t, err)
	// The commit is there when the tree built is a git checkout (the Docker build context is not).
	assert.Regexp(t, `^paybridge `+regexp.QuoteMeta(version)+` \((no VCS information in this build|[0-9a-f]{12}(\+dirty)?, \S+)\) go\S+\n$`, string(out))
}

// TestDockerBuildServes starts the Dockerfile's binary with `serve` on each configuration the
// repository ships for it, its secrets from the environment as the deploy files give them, and
// checks the probes the Kubernetes example uses, then stops it with SIGTERM as Kubernetes and
// systemd do.
func TestDockerBuildServes(t *testing.T) {
	bin, _ := dockerBuild(t)
	masterKey := make([]byte, 32)
	_, _ = rand.Read(masterKey)

	tests := []struct {
		name   string
		config string // the YAML as shipped
		env    map[string]string
	}{
		{
			name:   "config/example.yaml",
			config: readRepoFile(t, "config/example.yaml"),
			env: map[string]string{
				"ACME_VCC_SECRET": "example-vcc-secret", "ACME_WEBHOOK_SECRET": "whsec_exampleexample",
				"ACME_VCC_WEBHOOK_SECRET": "example-vcc-webhook-secret",
			},
		},
		{
			name:   "deploy/kubernetes/configmap.yaml",
			config: kubeObject[kubeConfigMap](t, "configmap.yaml").Data["paybridge.yaml"],
			// The Secret's keys, as envFrom gives them, with a real master key for the placeholder.
			env: withEnv(kubeObject[kubeSecret](t, "secret.yaml").StringData, "PAYBRIDGE_MASTER_KEY", base64.StdEncoding.EncodeToString(masterKey)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NotEmpty(t, tt.config)
			dir := t.TempDir()
			cfg := map[string]any{}
			require.NoError(t, yaml.Unmarshal([]byte(tt.config), &cfg))
			// Only where it listens and keeps its data change: a free loopback port, a fresh dir.
			cfg["listen"], cfg["dataDir"] = "127.0.0.1:0", filepath.Join(dir, "data")
			data, err := yaml.Marshal(cfg)
			require.NoError(t, err)
			cfgPath := filepath.Join(dir, "paybridge.yaml")
			require.NoError(t, os.WriteFile(cfgPath, data, 0o600))

			cmd := exec.Command(bin, "serve", "--config", cfgPath)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
			for k, v := range tt.env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			logs := &lineLog{}
			stderr, err := cmd.StderrPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			exited := make(chan error, 1)
			addr := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					logs.WriteLine(sc.Text())
					var line struct{ Msg, Addr string }
					if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "paybridge listening" {
						addr <- line.Addr
					}
				}
				exited <- cmd.Wait()
			}()
			t.Cleanup(func() { _ = cmd.Process.Kill() })

			var base string
			select {
			case a := <-addr:
				base = "http://" + a
			case err := <-exited:
				require.FailNow(t, "serve exited before listening", "%v\n%s", err, logs)
			case <-time.After(30 * time.Second):
				require.FailNow(t, "serve did not listen within 30 s", "%s", logs)
			}

			for _, path := range []string{"/healthz", "/readyz", "/static/paybridge.js", "/static/paybridge.d.ts", "/metrics"} {
				resp, err := http.Get(base + path)
				require.NoError(t, err)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				assert.Equal(t, http.StatusOK, resp.StatusCode, path)
			}

			require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			select {
			case err := <-exited:
				assert.NoError(t, err, "serve should exit 0 on SIGTERM\n%s", logs)
			case <-time.After(20 * time.Second):
				require.FailNow(t, "serve did not stop within 20 s of SIGTERM", "%s", logs)
			}
			for k, v := range tt.env {
				assert.NotContains(t, logs.String(), v, "the value of %s is in the log", k)
			}
		})
	}
}

// TestSystemdUnit: the unit runs the binary as a non-root user with its secrets from a file,
// offers a reload only when paybridge handles SIGHUP, and systemd-analyze verifies it (against a
// root holding this machine's system units and the binary at the unit's path).
func TestSystemdUnit(t *testing.T) {
	unit := readRepoFile(t, "deploy/systemd/paybridge.service")
	directive := func(name string) []string {
		return submatches(unit, `(?m)^`+name+`=(.*)$`)
	}
	assert.Equal(t, []string{"paybridge"}, directive("User"))
	assert.Equal(t, []string{"/etc/paybridge/paybridge.env"}, directive("EnvironmentFile"))
	assert.Equal(t, []string{"/usr/local/bin/paybridge serve --config /etc/paybridge/paybridge.yaml"}, directive("ExecStart"))
	for _, hardening := range []string{"NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "CapabilityBoundingSet", "SystemCallFilter"} {
		assert.NotEmpty(t, directive(hardening), "%s= is missing", hardening)
	}
	assert.Equal(t, handlesSIGHUP(t), len(directive("ExecReload")) > 0,
		"ExecReload must send SIGHUP exactly when cmd/paybridge handles it (ExecReload=/bin/kill -HUP $MAINPID); without a handler SIGHUP stops the process")

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the unit was checked by reading only")
	}
	bin, _ := dockerBuild(t)
	root := t.TempDir()
	copyTreeTo(t, bin, filepath.Join(root, "usr/local/bin/paybridge"))
	copyTreeTo(t, filepath.Join(deployRepoRoot, "deploy/systemd/paybridge.service"), filepath.Join(root, "etc/systemd/system/paybridge.service"))
	// Every command the unit runs must exist in the root, as on a real host: ExecReload's kill too.
	for _, reload := range directive("ExecReload") {
		command, _, _ := strings.Cut(reload, " ")
		copyTreeTo(t, command, filepath.Join(root, command))
	}
	units := ""
	for _, dir := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if st, err := os.Stat(dir + "/sysinit.target"); err == nil && !st.IsDir() {
			units = dir
			break
		}
	}
	require.NotEmpty(t, units, "systemd-analyze is installed but no system units were found")
	copyTreeTo(t, units, filepath.Join(root, "usr/lib/systemd/system"))

	tests := []struct {
		name string
		args []string
	}{
		{"verify", []string{"verify", "--root=" + root, "/etc/systemd/system/paybridge.service"}},
		// Exposure 2.0 ("OK") at most on systemd's 0-10 scale; it measures 1.2 today.
		{"security", []string{"security", "--offline=yes", "--threshold=20", "--no-pager", "--root=" + root, "/etc/systemd/system/paybridge.service"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, analyze, tt.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, "systemd-analyze %s:\n%s%s", tt.name, out, &stderr)
			assert.Empty(t, stderr.String(), "systemd-analyze %s warns", tt.name)
		})
	}
}

// handlesSIGHUP reports whether the command's code asks for SIGHUP.
func handlesSIGHUP(t *testing.T) bool {
	t.Helper()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		if strings.Contains(readRepoFile(t, filepath.Join("cmd/paybridge", f)), "syscall.SIGHUP") {
			return true
		}
	}
	return false
}

type kubeMeta struct {
	Name string `yaml:"name"`
}

type kubeConfigMap struct {
	Metadata kubeMeta          `yaml:"metadata"`
	Data     map[string]string `yaml:"data"`
}

type kubeSecret struct {
	Metadata   kubeMeta          `yaml:"metadata"`
	StringData map[string]string `yaml:"stringData"`
}

type kubeProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type kubeDeployment struct {
	Spec struct {
		Replicas int `yaml:"replicas"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Template struct {
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				Containers []struct {
					Command []string `yaml:"command"`
					Args    []string `yaml:"args"`
					Ports   []struct {
						Name          string `yaml:"name"`
						ContainerPort int    `yaml:"containerPort"`
					} `yaml:"ports"`
					EnvFrom []struct {
						SecretRef kubeMeta `yaml:"secretRef"`
					} `yaml:"envFrom"`
					ReadinessProbe  kubeProbe `yaml:"readinessProbe"`
					LivenessProbe   kubeProbe `yaml:"livenessProbe"`
					SecurityContext struct {
						ReadOnlyRootFilesystem   bool `yaml:"readOnlyRootFilesystem"`
						AllowPrivilegeEscalation bool `yaml:"allowPrivilegeEscalation"`
					} `yaml:"securityContext"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name      string   `yaml:"name"`
					ConfigMap kubeMeta `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// TestKubernetesExample: the example's objects fit each other and the image: the probes, the
// port, the Secret and ConfigMap it names, the config path the image's CMD reads, one replica
// replaced by Recreate (the bbolt file has one holder), and kustomization listing every file.
func TestKubernetesExample(t *testing.T) {
	d := readDockerfile(t)
	cm := kubeObject[kubeConfigMap](t, "configmap.yaml")
	sec := kubeObject[kubeSecret](t, "secret.yaml")
	dep := kubeObject[kubeDeployment](t, "deployment.yaml")
	require.Len(t, dep.Spec.Template.Spec.Containers, 1)
	c := dep.Spec.Template.Spec.Containers[0]
	cfg := struct {
		Listen  string `yaml:"listen"`
		DataDir string `yaml:"dataDir"`
	}{}
	require.NoError(t, yaml.Unmarshal([]byte(cm.Data["paybridge.yaml"]), &cfg))

	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	configVolume := ""
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.ConfigMap.Name == cm.Metadata.Name {
			configVolume = v.Name
		}
	}
	require.NotEmpty(t, configVolume, "no volume of ConfigMap %s", cm.Metadata.Name)
	require.Len(t, c.Ports, 1)

	assert.Equal(t, 1, dep.Spec.Replicas, "one replica: the bbolt store has one holder (several need PostgreSQL)")
	assert.Equal(t, "Recreate", dep.Spec.Strategy.Type, "a rolling update would start a second holder of the data file")
	assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	assert.Equal(t, c.Ports[0].Name, c.ReadinessProbe.HTTPGet.Port)
	assert.Equal(t, c.Ports[0].Name, c.LivenessProbe.HTTPGet.Port)
	assert.Equal(t, d.expose, []string{fmt.Sprint(c.Ports[0].ContainerPort)}, "the image's EXPOSE")
	assert.Equal(t, "0.0.0.0:"+fmt.Sprint(c.Ports[0].ContainerPort), cfg.Listen, "the config must listen on the container port, on every interface")
	assert.Empty(t, c.Command, "the image's ENTRYPOINT is used")
	assert.Empty(t, c.Args, "the image's CMD is used")
	assert.Equal(t, d.cmd[len(d.cmd)-1], mounts[configVolume]+"/paybridge.yaml", "the CMD's --config is the ConfigMap's file")
	assert.Equal(t, cfg.DataDir, mounts["data"], "dataDir is the data volume")
	assert.Equal(t, []string{sec.Metadata.Name}, []string{c.EnvFrom[0].SecretRef.Name}, "secrets come from the Secret")
	assert.Contains(t, sec.StringData, "PAYBRIDGE_MASTER_KEY")
	assert.True(t, dep.Spec.Template.Spec.SecurityContext.RunAsNonRoot)
	assert.True(t, c.SecurityContext.ReadOnlyRootFilesystem)
	assert.False(t, c.SecurityContext.AllowPrivilegeEscalation)

	kust := struct {
		Resources []string `yaml:"resources"`
	}{}
	require.NoError(t, yaml.Unmarshal([]byte(readRepoFile(t, "deploy/kubernetes/kustomization.yaml")), &kust))
	files, err := filepath.Glob(filepath.Join(deployRepoRoot, "deploy/kubernetes/*.yaml"))
	require.NoError(t, err)
	var want []string
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" {
			want = append(want, base)
		}
	}
	assert.ElementsMatch(t, want, kust.Resources)
}

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployRepoRoot, path))
	require.NoError(t, err)
	return string(data)
}

func kubeObject[T any](t *testing.T, file string) T {
	t.Helper()
	var v T
	require.NoError(t, yaml.Unmarshal([]byte(readRepoFile(t, "deploy/kubernetes/"+file)), &v), file)
	return v
}

func withEnv(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for key, val := range m {
		if key != k {
			out[key] = val
		}
	}
	return out
}

func submatches(s, pattern string) []string {
	var out []string
	for _, m := range regexp.MustCompile(pattern).FindAllStringSubmatch(s, -1) {
		out = append(out, strings.TrimSpace(m[1]))
	}
	return out
}

// copyTree copies a file or a directory (symbolic links as links) from src to dst.
func copyTreeTo(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
	require.NoError(t, err)
}

// lineLog collects a process's log lines from one goroutine for another to read.
type lineLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lineLog) WriteLine(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s + "\n")
}

func (b *lineLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
