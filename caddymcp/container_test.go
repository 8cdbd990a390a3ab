package caddymcp

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// containerHardening is the part of every docker command line that does not depend on
// the config, after "run".
var containerHardening = []string{"-i", "--rm", "--init", "--security-opt", "no-new-privileges", "--cap-drop", "ALL"}

func containerRunArgv(parts ...[]string) []string {
	out := []string{"run"}
	out = append(out, containerHardening...)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestContainerArgv(t *testing.T) {
	defaults := []string{"--cpus", "1", "--memory", "512m", "--pids-limit", "256", "--network", "none"}
	tests := []struct {
		name string
		c    ContainerConfig
		want []string
	}{
		{
			name: "defaults",
			c:    ContainerConfig{Image: "mcp/time"},
			want: containerRunArgv(defaults, []string{"mcp/time"}),
		},
		{
			name: "args after the image may look like options",
			c:    ContainerConfig{Image: "mcp/fs:1.2@sha256:abc", Args: []string{"--root", "/data", "-v"}},
			want: containerRunArgv(defaults, []string{"mcp/fs:1.2@sha256:abc", "--root", "/data", "-v"}),
		},
		{
			// Only the names: the values reach docker through its environment.
			name: "env names only, sorted",
			c: ContainerConfig{Image: "img", Env: map[string]string{
				"ZED": "last", "A_1": "first", "_X": "-looks-like-a-flag", "M": "a=b c",
			}},
			want: containerRunArgv(defaults, []string{
				"-e", "A_1", "-e", "M", "-e", "ZED", "-e", "_X",
				"img",
			}),
		},
		{
			name: "volumes in order",
			c:    ContainerConfig{Image: "img", Volumes: []string{"/srv/data:/data:ro", "cache:/cache", "/tmp/x:/x:rw"}},
			want: containerRunArgv(defaults, []string{"-v", "/srv/data:/data:ro", "-v", "cache:/cache", "-v", "/tmp/x:/x:rw", "img"}),
		},
		{
			name: "limits and network set",
			c:    ContainerConfig{Image: "img", CPUs: "0.5", Memory: "1g", PidsLimit: 64, Network: "bridge"},
			want: containerRunArgv([]string{"--cpus", "0.5", "--memory", "1g", "--pids-limit", "64", "--network", "bridge", "img"}),
		},
		{
			name: "read-only root with a tmpfs /tmp",
			c:    ContainerConfig{Image: "img", ReadOnly: true},
			want: containerRunArgv([]string{"--read-only", "--tmpfs", "/tmp"}, defaults, []string{"img"}),
		},
		{
			name: "everything",
			c: ContainerConfig{
				Image: "ghcr.io/acme/server:latest", Args: []string{"serve", "--stdio"},
				Env: map[string]string{"TOKEN": "{env.TOKEN}", "DEBUG": "1"}, Volumes: []string{"/home/me:/work"},
				Network: "host", CPUs: "2", Memory: "256M", PidsLimit: 1000, ReadOnly: true, Runtime: "podman",
			},
			want: []string{
				"run", "-i", "--rm", "--init", "--security-opt", "no-new-privileges", "--cap-drop", "ALL",
				"--read-only", "--tmpfs", "/tmp",
				"--cpus", "2", "--memory", "256M", "--pids-limit", "1000", "--network", "host",
				"-e", "DEBUG", "-e", "TOKEN",
				"-v", "/home/me:/work",
				"ghcr.io/acme/server:latest", "serve", "--stdio",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.argv()
			if err != nil {
				t.Fatalf("argv: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("argv:\n got %q\nwant %q", got, tt.want)
			}
			// No env value may show on the command line, as an argument or
			// after its name.
			for k, v := range tt.c.Env {
				for _, a := range got {
					if a == v || strings.Contains(a, k+"=") {
						t.Errorf("argv carries env %s=%s in %q", k, v, a)
					}
				}
			}
			// Deterministic: map iteration order must not show.
			for range 20 {
				again, _ := tt.c.argv()
				if !slices.Equal(again, got) {
					t.Fatalf("argv differs between calls:\n%q\n%q", got, again)
				}
			}
		})
	}
}

func TestContainerValidateAccepts(t *testing.T) {
	for _, c := range []ContainerConfig{
		{Image: "img", CPUs: ".5"},
		{Image: "img", CPUs: "16"},
		{Image: "img", Memory: "1.5g"},
		{Image: "img", Memory: "1073741824"},
		{Image: "img", Memory: "64k"},
		{Image: "img", Memory: "100b"},
		{Image: "img", Volumes: []string{"named:/data"}},
		{Image: "img", Volumes: []string{"{env.HOME}/x:/x:ro"}},
		{Image: "img", Env: map[string]string{"EMPTY": ""}},
	} {
		if err := c.validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestContainerValidateRefuses(t *testing.T) {
	tests := []struct {
		name    string
		c       ContainerConfig
		wantErr string
	}{
		{"no image", ContainerConfig{}, `container: image is required`},
		{"image option", ContainerConfig{Image: "--privileged"}, `container: image "--privileged": values beginning with '-' are refused`},
		{"image whitespace", ContainerConfig{Image: "img --privileged"}, `container: image "img --privileged": must not contain whitespace`},
		{"image NUL", ContainerConfig{Image: "img\x00"}, `container: image "img\x00": must not contain a NUL byte`},
		{"arg NUL", ContainerConfig{Image: "img", Args: []string{"ok", "a\x00b"}}, `container: args[1] "a\x00b": must not contain a NUL byte`},
		{"network option", ContainerConfig{Image: "img", Network: "--privileged"}, `container: network "--privileged": values beginning with '-' are refused`},
		{"env for docker itself", ContainerConfig{Image: "img", Env: map[string]string{"DOCKER_HOST": "tcp://evil:2375"}}, `container: env key "DOCKER_HOST": would configure the docker CLI itself, not the container`},
		{"env PATH", ContainerConfig{Image: "img", Env: map[string]string{"PATH": "/tmp"}}, `container: env key "PATH": would configure the docker CLI itself, not the container`},
		{"cpus option", ContainerConfig{Image: "img", CPUs: "-1"}, `container: cpus "-1": values beginning with '-' are refused`},
		{"cpus zero", ContainerConfig{Image: "img", CPUs: "0"}, `container: cpus "0": must be a positive number such as 0.5 or 2`},
		{"cpus word", ContainerConfig{Image: "img", CPUs: "two"}, `container: cpus "two": must be a positive number such as 0.5 or 2`},
		{"cpus inf", ContainerConfig{Image: "img", CPUs: "Inf"}, `container: cpus "Inf": must be a positive number such as 0.5 or 2`},
		{"cpus hex", ContainerConfig{Image: "img", CPUs: "0x1p1"}, `container: cpus "0x1p1": must be a positive number such as 0.5 or 2`},
		{"memory option", ContainerConfig{Image: "img", Memory: "--privileged"}, `container: memory "--privileged": values beginning with '-' are refused`},
		{"memory suffix", ContainerConfig{Image: "img", Memory: "512x"}, `container: memory "512x": must be a positive number with an optional b, k, m or g suffix, such as 512m`},
		{"memory zero", ContainerConfig{Image: "img", Memory: "0m"}, `container: memory "0m": must be a positive number with an optional b, k, m or g suffix, such as 512m`},
		{"memory unit only", ContainerConfig{Image: "img", Memory: "m"}, `container: memory "m": must be a positive number with an optional b, k, m or g suffix, such as 512m`},
		{"pids negative", ContainerConfig{Image: "img", PidsLimit: -1}, `container: pids_limit -1: must be positive (0 means the default, 256)`},
		{"env key option", ContainerConfig{Image: "img", Env: map[string]string{"--privileged": "x"}}, `container: env key "--privileged": must match ^[A-Za-z_][A-Za-z0-9_]*$`},
		{"env key digit", ContainerConfig{Image: "img", Env: map[string]string{"1X": "x"}}, `container: env key "1X": must match ^[A-Za-z_][A-Za-z0-9_]*$`},
		{"env key equals", ContainerConfig{Image: "img", Env: map[string]string{"A=B": "x"}}, `container: env key "A=B": must match ^[A-Za-z_][A-Za-z0-9_]*$`},
		{"env key empty", ContainerConfig{Image: "img", Env: map[string]string{"": "x"}}, `container: env key "": must match ^[A-Za-z_][A-Za-z0-9_]*$`},
		{"env value NUL", ContainerConfig{Image: "img", Env: map[string]string{"K": "a\x00"}}, `container: env K: value must not contain a NUL byte`},
		{"volume option", ContainerConfig{Image: "img", Volumes: []string{"/a:/a", "--privileged"}}, `container: volumes[1] "--privileged": values beginning with '-' are refused`},
		{"volume one part", ContainerConfig{Image: "img", Volumes: []string{"/data"}}, `container: volumes[0] "/data": must be host:container or host:container:ro|rw`},
		{"volume four parts", ContainerConfig{Image: "img", Volumes: []string{"/a:/b:ro:z"}}, `container: volumes[0] "/a:/b:ro:z": must be host:container or host:container:ro|rw`},
		{"volume empty host", ContainerConfig{Image: "img", Volumes: []string{":/data"}}, `container: volumes[0] ":/data": host path is empty`},
		{"volume relative container path", ContainerConfig{Image: "img", Volumes: []string{"/a:data"}}, `container: volumes[0] "/a:data": container path "data" must be absolute`},
		{"volume mode", ContainerConfig{Image: "img", Volumes: []string{"/a:/b:z"}}, `container: volumes[0] "/a:/b:z": mode "z" must be ro or rw`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.validate()
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("validate: got %v\nwant %s", err, tt.wantErr)
			}
			if _, err := tt.c.argv(); err == nil || err.Error() != tt.wantErr {
				t.Errorf("argv: got %v\nwant %s", err, tt.wantErr)
			}
		})
	}
}

// fakeDockerScript returns the path of testdata/docker, the stand-in for the docker
// CLI, skipping the test where it cannot run.
func fakeDockerScript(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("testdata/docker is a POSIX sh script")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh: ", err)
	}
	path, err := filepath.Abs(filepath.Join("testdata", "docker"))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFakeDockerRunsCommandWithStdio(t *testing.T) {
	docker := fakeDockerScript(t)
	c := ContainerConfig{
		Image:    "example/echo:1",
		Env:      map[string]string{"B": "two words", "A": "-x"},
		Volumes:  []string{"/srv:/srv:ro"},
		ReadOnly: true,
	}
	argv, err := c.argv()
	if err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(t.TempDir(), "docker.log")

	cmd := exec.Command(docker, argv...)
	cmd.Env = append(containerTestEnv(c.Env), "FAKE_DOCKER_LOG="+logFile, "FAKE_DOCKER_EXEC=cat")
	cmd.Stdin = strings.NewReader("{\"jsonrpc\":\"2.0\"}\nsecond line\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fake docker: %v, stderr: %s", err, containerTestStderr(err))
	}
	if want := "{\"jsonrpc\":\"2.0\"}\nsecond line\n"; string(out) != want {
		t.Errorf("stdout: got %q, want %q", out, want)
	}

	logged, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(argv, "\n") + "\n--\n"; string(logged) != want {
		t.Errorf("log:\n got %q\nwant %q", logged, want)
	}
}

func TestFakeDockerPassesEnvAndArgs(t *testing.T) {
	docker := fakeDockerScript(t)
	c := ContainerConfig{
		Image: "example/env",
		Env:   map[string]string{"GREETING": "hello, world *"},
		Args:  []string{"GREETING"},
	}
	argv, err := c.argv()
	if err != nil {
		t.Fatal(err)
	}
	// As the caller runs docker: the values in docker's own environment,
	// only the names on its command line.
	cmd := exec.Command(docker, argv...)
	cmd.Env = append(containerTestEnv(c.Env), "FAKE_DOCKER_EXEC=printenv")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fake docker: %v, stderr: %s", err, containerTestStderr(err))
	}
	if want := "hello, world *\n"; string(out) != want {
		t.Errorf("stdout: got %q, want %q", out, want)
	}

	// As docker does: "-e KEY" takes KEY from the environment, set even if
	// empty, and leaves it unset if unset there; "-e KEY=VALUE" sets VALUE
	// whatever the environment holds.
	cmd = exec.Command(docker, "run",
		"-e", "FAKE_TEST_FROM_ENV", "-e", "FAKE_TEST_EMPTY", "-e", "FAKE_TEST_MISSING",
		"-e", "FAKE_TEST_LITERAL=a=b  c", "--env=FAKE_TEST_OVERRIDE=new", "--env=FAKE_TEST_LONG",
		"example/env",
		`printf '[%s]' "$FAKE_TEST_FROM_ENV" "$FAKE_TEST_EMPTY" "${FAKE_TEST_MISSING-unset}" `+
			`"$FAKE_TEST_LITERAL" "$FAKE_TEST_OVERRIDE" "$FAKE_TEST_LONG"`)
	cmd.Env = append(containerTestEnv(map[string]string{
		"FAKE_TEST_FROM_ENV": "from env", "FAKE_TEST_EMPTY": "", "FAKE_TEST_OVERRIDE": "old", "FAKE_TEST_LONG": "-long",
	}), "FAKE_DOCKER_EXEC=sh -c")
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("fake docker: %v, stderr: %s", err, containerTestStderr(err))
	}
	if want := "[from env][][unset][a=b  c][new][-long]"; string(out) != want {
		t.Errorf("stdout: got %q, want %q", out, want)
	}

	// Args after the image reach the command verbatim, options and all.
	c = ContainerConfig{Image: "example/args", Args: []string{"--privileged", "-e", "a b", "*"}}
	argv, err = c.argv()
	if err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(docker, argv...)
	cmd.Env = append(os.Environ(), "FAKE_DOCKER_EXEC=printf [%s]")
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("fake docker: %v, stderr: %s", err, containerTestStderr(err))
	}
	if want := "[--privileged][-e][a b][*]"; string(out) != want {
		t.Errorf("stdout: got %q, want %q", out, want)
	}
}

func TestFakeDockerRefusesUnknownOption(t *testing.T) {
	docker := fakeDockerScript(t)
	for _, args := range [][]string{
		{"run", "-i", "--no-such-option", "img"},
		{"run", "-e", "1X", "img"},
		{"run", "-e", "A-B=x", "img"},
		{"run", "--env=$(id)", "img"},
	} {
		cmd := exec.Command(docker, args...)
		cmd.Env = append(os.Environ(), "FAKE_DOCKER_EXEC=cat")
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 125 {
			t.Errorf("%q: got %v, want exit status 125", args, err)
		}
	}
}

// containerTestEnv returns this process's environment with env in place of
// any variables of the same names, as the caller runs docker.
func containerTestEnv(env map[string]string) []string {
	out := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		_, ok := env[k]
		return ok || strings.HasPrefix(k, "FAKE_TEST_")
	})
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

func containerTestStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
