package main

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// No Docker engine runs where the tests run, so the image is checked by
// reading its Dockerfile: the properties operators rely on (empty base,
// non-root, volumes, ports, health check, entrypoint) and the example
// configuration it ships, which must load.

// dfInstruction is one Dockerfile instruction with continuations joined.
type dfInstruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
	line int
}

// dfStage is one build stage: its FROM and what follows.
type dfStage struct {
	from, name string
	ins        []dfInstruction
}

// parseDockerfile splits text into stages. It understands what a
// Dockerfile is made of (comments, backslash continuations, ARG before the
// first FROM) and rejects the shapes docker build would reject.
func parseDockerfile(text string) ([]dfStage, error) {
	var stages []dfStage
	var cur strings.Builder
	start := 0
	flush := func() error {
		s := strings.TrimSpace(cur.String())
		cur.Reset()
		if s == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(s, " ")
		in := dfInstruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:]
			}
			if len(f) == 0 {
				return fmt.Errorf("line %d: FROM without an image", in.line)
			}
			st := dfStage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			} else if len(f) != 1 {
				return fmt.Errorf("line %d: FROM %q: want IMAGE [AS NAME]", in.line, in.args)
			}
			stages = append(stages, st)
			return nil
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				return nil
			}
			return fmt.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		return nil
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	n, continued := 0, false
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && continued) {
			continue
		}
		if !continued {
			start = n
		}
		body, more := strings.CutSuffix(line, "\\")
		cur.WriteString(strings.TrimSpace(body))
		cur.WriteString(" ")
		continued = more
		if !more {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if continued {
		return nil, fmt.Errorf("line %d: continuation at end of file", start)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return stages, nil
}

// execForm parses a JSON-array (exec form) argument list.
func execForm(args string) ([]string, bool) {
	var v []string
	if err := json.Unmarshal([]byte(args), &v); err != nil || len(v) == 0 {
		return nil, false
	}
	return v, true
}

// last returns the last instruction cmd of st, or ok=false.
func (st dfStage) last(cmd string) (dfInstruction, bool) {
	for i := len(st.ins) - 1; i >= 0; i-- {
		if st.ins[i].cmd == cmd {
			return st.ins[i], true
		}
	}
	return dfInstruction{}, false
}

// imageProblems checks the final stage and the build stage of popgate's
// image and returns each property that does not hold.
func imageProblems(stages []dfStage) []string {
	var p []string
	final := stages[len(stages)-1]
	if final.from != "scratch" && !strings.HasPrefix(final.from, "gcr.io/distroless/") {
		p = append(p, fmt.Sprintf("final stage FROM %s: want scratch or distroless", final.from))
	}
	if u, ok := final.last("USER"); !ok {
		p = append(p, "final stage has no USER: it would run as root")
	} else {
		id, _, _ := strings.Cut(u.args, ":")
		if n, err := strconv.Atoi(id); err != nil || n == 0 {
			p = append(p, fmt.Sprintf("USER %s: want a numeric non-root uid (scratch has no user database to resolve names at run time)", u.args))
		}
	}
	var volumes []string
	for _, in := range final.ins {
		if in.cmd == "VOLUME" {
			v, ok := execForm(in.args)
			if !ok {
				v = strings.Fields(in.args)
			}
			volumes = append(volumes, v...)
		}
	}
	for _, want := range []string{"/data", "/etc/popgate"} {
		if !slices.Contains(volumes, want) {
			p = append(p, fmt.Sprintf("no VOLUME %s", want))
		}
	}
	ports := exposedPorts(final)
	for _, want := range []string{"25", "110", "465", "587", "995"} {
		if !slices.Contains(ports, want) {
			p = append(p, fmt.Sprintf("port %s not EXPOSEd", want))
		}
	}
	if hc, ok := final.last("HEALTHCHECK"); !ok {
		p = append(p, "no HEALTHCHECK")
	} else {
		_, cmd, _ := strings.Cut(hc.args, "CMD ")
		v, ok := execForm(strings.TrimSpace(cmd))
		if !ok || len(v) < 2 || v[0] != "/popgate" || v[1] != "health" {
			p = append(p, fmt.Sprintf("HEALTHCHECK %s: want exec form [\"/popgate\", \"health\", ...] (scratch has no shell)", hc.args))
		}
	}
	if ep, ok := final.last("ENTRYPOINT"); !ok {
		p = append(p, "no ENTRYPOINT")
	} else if v, ok := execForm(ep.args); !ok || !slices.Equal(v, []string{"/popgate"}) {
		p = append(p, fmt.Sprintf("ENTRYPOINT %s: want [\"/popgate\"] in exec form", ep.args))
	}
	if c, ok := final.last("CMD"); !ok {
		p = append(p, "no CMD")
	} else if v, ok := execForm(c.args); !ok || len(v) == 0 || v[0] != "serve" {
		p = append(p, fmt.Sprintf("CMD %s: want [\"serve\", ...] in exec form", c.args))
	}
	binary, certs := false, false
	for _, in := range final.ins {
		if in.cmd != "COPY" || !strings.Contains(in.args, "--from=") {
			continue
		}
		f := strings.Fields(in.args)
		if f[len(f)-1] == "/popgate" {
			binary = true
		}
		if strings.Contains(in.args, "ca-certificates.crt") {
			certs = true
		}
	}
	if !binary {
		p = append(p, "the binary is not copied from a build stage to /popgate")
	}
	if !certs {
		p = append(p, "no CA certificates copied (outbound STARTTLS could not verify MX hosts)")
	}
	if b := buildRun(stages); b == "" {
		p = append(p, "no build stage RUN with go build")
	} else {
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=", "./cmd/popgate"} {
			if !strings.Contains(b, want) {
				p = append(p, fmt.Sprintf("go build lacks %s", want))
			}
		}
	}
	return p
}

// exposedPorts lists the final stage's EXPOSEd ports without protocol.
func exposedPorts(st dfStage) []string {
	var ports []string
	for _, in := range st.ins {
		if in.cmd == "EXPOSE" {
			for _, f := range strings.Fields(in.args) {
				port, _, _ := strings.Cut(f, "/")
				ports = append(ports, port)
			}
		}
	}
	return ports
}

// buildRun returns the RUN instruction of an earlier stage that runs go build.
func buildRun(stages []dfStage) string {
	for _, st := range stages[:len(stages)-1] {
		for _, in := range st.ins {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				return in.args
			}
		}
	}
	return ""
}

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDockerfileImage checks the real Dockerfile and the configuration it
// ships: that configuration loads, keeps its data in the /data volume and
// listens on exactly the EXPOSEd ports, and CMD and HEALTHCHECK name it.
func TestDockerfileImage(t *testing.T) {
	stages, err := parseDockerfile(readRepoFile(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, prob := range imageProblems(stages) {
		t.Error(prob)
	}
	final := stages[len(stages)-1]

	// Which repository file becomes the image's configuration.
	const confPath = "/etc/popgate/popgate.toml"
	src := ""
	for _, in := range final.ins {
		f := strings.Fields(in.args)
		if in.cmd == "COPY" && !strings.Contains(in.args, "--from=") && f[len(f)-1] == confPath {
			src = f[len(f)-2]
		}
	}
	if src == "" {
		t.Fatalf("no COPY of a configuration to %s", confPath)
	}
	for _, cmd := range []string{"CMD", "HEALTHCHECK"} {
		in, _ := final.last(cmd)
		if !strings.Contains(in.args, `"--config", "`+confPath+`"`) {
			t.Errorf("%s %s does not use %s", cmd, in.args, confPath)
		}
	}
	cfg, err := loadConfig(filepath.Join("..", "..", src))
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	if cfg.DataDir != "/data" {
		t.Errorf("data_dir = %q, want the /data volume", cfg.DataDir)
	}
	if cfg.controlSocket() != "/data/state/control.sock" {
		t.Errorf("control socket %s is outside the data volume", cfg.controlSocket())
	}
	var listenPorts []string
	for _, l := range cfg.listeners() {
		for _, a := range l.addrs {
			host, port, err := net.SplitHostPort(a)
			if err != nil {
				t.Fatal(err)
			}
			if host != "" && host != "0.0.0.0" && host != "::" {
				t.Errorf("%s = %s: a container must listen on every address", l.key, a)
			}
			listenPorts = append(listenPorts, port)
		}
	}
	exposed := exposedPorts(final)
	slices.Sort(listenPorts)
	slices.Sort(exposed)
	if !slices.Equal(listenPorts, exposed) {
		t.Errorf("listeners on %v but EXPOSE %v", listenPorts, exposed)
	}
	if slices.ContainsFunc(cfg.Relay.TrustedNetworks, func(p Prefix) bool { return !p.Addr().IsLoopback() }) {
		t.Errorf("trusted_networks %v trusts more than the container itself", cfg.Relay.TrustedNetworks)
	}

	// The build context keeps what the build needs and drops the rest.
	ignore := strings.Fields(readRepoFile(t, ".dockerignore"))
	for _, want := range []string{".git", "/popgate", "contrib/*", "!contrib/docker/"} {
		if !slices.Contains(ignore, want) {
			t.Errorf(".dockerignore lacks %q", want)
		}
	}
	for _, bad := range []string{"go.mod", "go.sum", "cmd", "cmd/", "contrib/docker", "*.go"} {
		if slices.Contains(ignore, bad) {
			t.Errorf(".dockerignore drops %q, which the build needs", bad)
		}
	}
}

// TestDockerfileChecksCatchMistakes feeds broken variants of the real
// Dockerfile to the checks: each must be reported.
func TestDockerfileChecksCatchMistakes(t *testing.T) {
	good := readRepoFile(t, "Dockerfile")
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"golang final stage", "FROM scratch", "FROM golang:1.26", "want scratch or distroless"},
		{"root user", "USER 65532:65532", "USER 0:0", "want a numeric non-root uid"},
		{"named user", "USER 65532:65532", "USER popgate", "want a numeric non-root uid"},
		{"no user", "USER 65532:65532\n", "", "no USER"},
		{"no data volume", `VOLUME ["/data", "/etc/popgate"]`, `VOLUME ["/etc/popgate"]`, "no VOLUME /data"},
		{"missing port", "EXPOSE 25 110 465 587 995", "EXPOSE 25 110 587", "port 465 not EXPOSEd"},
		{"shell health check", `CMD ["/popgate", "health", "--config", "/etc/popgate/popgate.toml"]`, "CMD /popgate health", "want exec form"},
		{"shell entrypoint", `ENTRYPOINT ["/popgate"]`, "ENTRYPOINT /popgate", "ENTRYPOINT /popgate"},
		{"cgo build", "CGO_ENABLED=0 ", "", "go build lacks CGO_ENABLED=0"},
		{"no version", "-X main.version=${VERSION}", "", "go build lacks -X main.version="},
		{"no certificates", "COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n", "", "no CA certificates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the Dockerfile no longer contains %q: update this case", tc.old)
			}
			stages, err := parseDockerfile(strings.Replace(good, tc.old, tc.new, 1))
			if err != nil {
				t.Fatal(err)
			}
			probs := imageProblems(stages)
			if !slices.ContainsFunc(probs, func(s string) bool { return strings.Contains(s, tc.want) }) {
				t.Errorf("problems %q lack %q", probs, tc.want)
			}
		})
	}
}

// TestDockerfileParse covers the parser itself, valid and must-fail.
func TestDockerfileParse(t *testing.T) {
	stages, err := parseDockerfile("# c\nARG V=1\nFROM --platform=$X golang AS b\nRUN a \\\n  # inner comment\n  b\nfrom scratch\ncopy --from=b /x /y\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) != 2 || stages[0].name != "b" || stages[0].ins[0].args != "a b" || stages[0].ins[0].line != 4 ||
		stages[1].from != "scratch" || stages[1].ins[0].cmd != "COPY" {
		t.Errorf("parsed %+v", stages)
	}
	for _, bad := range []string{"", "# only a comment\n", "RUN x\nFROM scratch\n", "FROM\n", "FROM a b c d\n", "FROM scratch\nRUN a \\\n"} {
		if _, err := parseDockerfile(bad); err == nil {
			t.Errorf("parseDockerfile(%q) succeeded", bad)
		}
	}
}

// TestDockerfileBuildIsStatic builds the binary the way the Dockerfile
// does and proves it can run FROM scratch: no ELF interpreter, no shared
// libraries, and the stamped version.
func TestDockerfileBuildIsStatic(t *testing.T) {
	run := buildRun(mustParse(t))
	ld := regexp.MustCompile(`-ldflags "([^"]*)"`).FindStringSubmatch(run)
	if ld == nil || !strings.Contains(run, "-trimpath") {
		t.Fatalf("cannot find -trimpath and -ldflags in %q", run)
	}
	flags := strings.ReplaceAll(ld[1], "${VERSION}", "docker-test")
	bin := filepath.Join(t.TempDir(), "popgate")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", flags, "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %v segment: it needs a dynamic loader, which scratch lacks", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	if f.Section(".debug_info") != nil || f.Section(".symtab") != nil {
		t.Error("the binary is not stripped (-s -w)")
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "popgate docker-test" {
		t.Errorf("version: %q %v", out, err)
	}
}

func mustParse(t *testing.T) []dfStage {
	t.Helper()
	stages, err := parseDockerfile(readRepoFile(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	return stages
}
