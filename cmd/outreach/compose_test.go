package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// composeFile is the part of docker-compose.yml the test checks.
type composeFile struct {
	Services map[string]struct {
		Image         string            `yaml:"image"`
		Build         any               `yaml:"build"`
		Command       []string          `yaml:"command"`
		Environment   map[string]string `yaml:"environment"`
		ContainerName string            `yaml:"container_name"`
		Ports         []string          `yaml:"ports"`
		DependsOn     map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
}

// envRead reports whether the binary reads the variable name: some source
// file of this package names it in quotes (or names its prefix, for the
// per-credentials variables like UNIPILE_API_KEY_<REF>).
func envRead(t *testing.T, name string) bool {
	t.Helper()
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"`+name+`"`) {
			return true
		}
	}
	return false
}

// TestDockerCompose checks docker-compose.yml without a Docker engine:
// the services and their wiring, each command and flag against the
// binary's own, and each variable against what the binary reads.
func TestDockerCompose(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(b, &cf); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	for _, name := range []string{"postgres", "redis", "migrate", "scheduler", "worker", "dashboard", "simulator"} {
		if _, ok := cf.Services[name]; !ok {
			t.Errorf("service %q is missing", name)
		}
	}
	if img := cf.Services["postgres"].Image; !strings.HasPrefix(img, "postgres:15") {
		t.Errorf("postgres image %q, want postgres:15", img)
	}
	redis := cf.Services["redis"]
	if !strings.HasPrefix(redis.Image, "redis:7") {
		t.Errorf("redis image %q, want redis:7", redis.Image)
	}
	cmd := strings.Join(redis.Command, " ")
	if !strings.Contains(cmd, "--appendonly yes") || !strings.Contains(cmd, "--maxmemory-policy noeviction") {
		t.Errorf("redis command %q: want --appendonly yes and --maxmemory-policy noeviction", cmd)
	}
	w := cf.Services["worker"]
	if w.ContainerName != "" || len(w.Ports) > 0 {
		t.Errorf("worker has container_name %q or ports %v: it could not be scaled", w.ContainerName, w.Ports)
	}
	if p := cf.Services["dashboard"].Ports; len(p) != 1 || !strings.HasPrefix(p[0], "127.0.0.1:8080:") {
		t.Errorf("dashboard ports %v, want 127.0.0.1:8080:…", p)
	}
	if c := cf.Services["scheduler"].DependsOn["migrate"].Condition; c != "service_completed_successfully" {
		t.Errorf("scheduler waits for migrate with %q, want service_completed_successfully", c)
	}
	for _, v := range []string{"UNIPILE_DSN", "DATABASE_URL", "REDIS_URL", "UNIPILE_API_KEY"} {
		if w.Environment[v] == "" {
			t.Errorf("worker lacks %s", v)
		}
	}
	if !strings.Contains(w.Environment["UNIPILE_DSN"], "http://simulator:8089") {
		t.Errorf("worker UNIPILE_DSN = %q, want the simulator", w.Environment["UNIPILE_DSN"])
	}

	flagRE := regexp.MustCompile(`^--?([a-z][a-z0-9-]*)`)
	for name, s := range cf.Services {
		for dep, d := range s.DependsOn {
			ds, ok := cf.Services[dep]
			switch {
			case !ok:
				t.Errorf("%s depends on unknown service %s", name, dep)
			case d.Condition == "service_healthy" && ds.Healthcheck == nil:
				t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			case !slices.Contains([]string{"service_healthy", "service_completed_successfully", "service_started"}, d.Condition):
				t.Errorf("%s depends on %s with condition %q", name, dep, d.Condition)
			}
		}
		if s.Build == nil {
			continue // a stock image
		}
		if name != "migrate" && s.Healthcheck == nil {
			t.Errorf("service %s has no healthcheck", name)
		}
		// Every command and flag exists in the binary.
		cmds := [][]string{s.Command}
		if s.Healthcheck != nil && len(s.Healthcheck.Test) > 2 && s.Healthcheck.Test[1] == "/usr/local/bin/outreach" {
			cmds = append(cmds, s.Healthcheck.Test[2:])
		}
		for _, c := range cmds {
			if len(c) == 0 {
				t.Errorf("service %s has no command", name)
				continue
			}
			if lookupCommand(c[0]) == nil {
				t.Errorf("service %s runs unknown command %q", name, c[0])
				continue
			}
			_, _, help := cli(t, c[0], "--help")
			for _, arg := range c[1:] {
				if m := flagRE.FindStringSubmatch(arg); m != nil && !strings.Contains(help, "-"+m[1]+" ") && !strings.Contains(help, "-"+m[1]+"\n") {
					t.Errorf("service %s: outreach %s has no flag %s", name, c[0], arg)
				}
			}
		}
		for v := range s.Environment {
			base := v
			for _, p := range []string{"UNIPILE_API_KEY", "PARTOO_API_KEY", "ALTEGIO_PARTNER_TOKEN", "ALTEGIO_USER_TOKEN"} {
				if strings.HasPrefix(v, p+"_") && !strings.HasPrefix(v, "SIMULATOR_") {
					base = p
				}
			}
			if !envRead(t, base) {
				t.Errorf("service %s sets %s, which the binary does not read", name, v)
			}
		}
	}
}

// TestDockerfile checks that what the Dockerfile copies and builds exists.
func TestDockerfile(t *testing.T) {
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var froms []string
	var user, built bool
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			froms = append(froms, fields[1])
		case "COPY":
			if strings.HasPrefix(fields[1], "--from=") {
				continue
			}
			for _, src := range fields[1 : len(fields)-1] {
				if _, err := os.Stat(filepath.Join("../..", src)); err != nil {
					t.Errorf("Dockerfile copies %s, which does not exist", src)
				}
			}
		case "RUN":
			if i := slices.Index(fields, "./cmd/outreach"); i > 0 {
				built = true
			}
		case "USER":
			user = !strings.HasPrefix(fields[1], "root") && fields[1] != "0"
		}
	}
	if len(froms) != 2 || !strings.HasPrefix(froms[0], "golang:1.26") {
		t.Errorf("stages %v: want a golang:1.26 build stage and a runtime stage", froms)
	}
	if !built {
		t.Error("the Dockerfile does not build ./cmd/outreach")
	}
	if !user {
		t.Error("the image does not run as a non-root USER")
	}
	if _, err := os.Stat("../../.dockerignore"); err != nil {
		t.Error("no .dockerignore: the build context would carry bin/ and .git")
	}
}

// TestDockerComposeConfig has Compose itself validate the file when a
// Compose CLI is installed (it needs no engine for that).
func TestDockerComposeConfig(t *testing.T) {
	var args []string
	if p, err := exec.LookPath("docker-compose"); err == nil {
		args = []string{p}
	} else if p, err := exec.LookPath("docker"); err == nil && exec.Command(p, "compose", "version").Run() == nil {
		args = []string{p, "compose"}
	} else {
		t.Skip("no docker-compose or docker compose CLI")
	}
	cmd := exec.Command(args[0], append(args[1:], "-f", "docker-compose.yml", "config", "-q")...)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s config: %v\n%s", strings.Join(args, " "), err, out)
	}
}
