package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// `go tool task image` writes the image with cmd/mkimage, not with docker
// build; the Dockerfile stays for users with Docker. These tests build an
// image archive with mkimage and hold it to the Dockerfile, so the two
// cannot drift apart.

// imageArchive is what a docker-archive holds for its one image.
type imageArchive struct {
	tags   []string
	config struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Config       struct {
			User         string
			ExposedPorts map[string]struct{}
			Entrypoint   []string
			Cmd          []string
			Volumes      map[string]struct{}
			StopSignal   string
			Healthcheck  *struct {
				Test                           []string
				Interval, Timeout, StartPeriod time.Duration
				Retries                        int
			}
		} `json:"config"`
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	files map[string]*tar.Header // layer entries by absolute path
	data  map[string][]byte      // regular files' contents
}

// readImageArchive parses a docker-archive (as `docker save` writes and
// `podman load` reads) with a single one-layer image.
func readImageArchive(t *testing.T, name string) *imageArchive {
	t.Helper()
	members := map[string][]byte{}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		members[h.Name] = b
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(members["manifest.json"], &manifest); err != nil || len(manifest) != 1 || len(manifest[0].Layers) != 1 {
		t.Fatalf("manifest.json %s: %v; want one image with one layer", members["manifest.json"], err)
	}
	img := &imageArchive{tags: manifest[0].RepoTags, files: map[string]*tar.Header{}, data: map[string][]byte{}}
	if err := json.Unmarshal(members[manifest[0].Config], &img.config); err != nil {
		t.Fatalf("config %s: %v", manifest[0].Config, err)
	}
	layer, ok := members[manifest[0].Layers[0]]
	if !ok {
		t.Fatalf("layer %s missing from the archive", manifest[0].Layers[0])
	}
	if want := "sha256:" + sha256Hex(layer); !slices.Equal(img.config.RootFS.DiffIDs, []string{want}) {
		t.Errorf("diff_ids %v, want [%s]", img.config.RootFS.DiffIDs, want)
	}
	lr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := path.Clean("/" + h.Name)
		img.files[p] = h
		if h.Typeflag == tar.TypeReg {
			if img.data[p], err = io.ReadAll(lr); err != nil {
				t.Fatal(err)
			}
		}
	}
	return img
}

// buildImageArchive runs cmd/mkimage as `task image` does. The static
// binary it packs is mkimage itself, built CGO_ENABLED=0: the comparison
// is about the image's shape, and the interop test runs real popgate.
func buildImageArchive(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "static")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "../mkimage")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build mkimage: %v\n%s", err, out)
	}
	// A stand-in CA bundle: the test must not depend on the machine's.
	certs := filepath.Join(dir, "ca-certificates.crt")
	if err := os.WriteFile(certs, []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "popgate-image.tar")
	mk := exec.Command(bin, "-binary", bin, "-config", "../../contrib/docker/popgate.toml", "-certs", certs, "-version", version, "-o", out)
	if b, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("mkimage: %v\n%s", err, b)
	}
	return out
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// healthFlags parses HEALTHCHECK's options and its exec-form command.
func healthFlags(t *testing.T, args string) (map[string]string, []string) {
	t.Helper()
	opts, cmd, ok := strings.Cut(args, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %s has no CMD", args)
	}
	flags := map[string]string{}
	for _, f := range strings.Fields(opts) {
		k, v, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		flags[k] = v
	}
	argv, ok := execForm(strings.TrimSpace(cmd))
	if !ok {
		t.Fatalf("HEALTHCHECK CMD %s is not in exec form", cmd)
	}
	return flags, argv
}

// TestImageMatchesDockerfile builds the image archive and checks every
// instruction of the Dockerfile's final stage against it: run
// configuration, files, ownership, the passwd and group lines, and that
// nothing else (no shell) is in the image.
func TestImageMatchesDockerfile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/mkimage")
	}
	stages := mustParse(t)
	final := stages[len(stages)-1]
	img := readImageArchive(t, buildImageArchive(t, "v9.8.7"))
	c := img.config.Config

	if img.config.OS != "linux" || img.config.Architecture == "" {
		t.Errorf("platform %s/%s", img.config.OS, img.config.Architecture)
	}
	if !slices.Equal(img.tags, []string{"popgate:v9.8.7", "popgate:latest"}) {
		t.Errorf("tags %v", img.tags)
	}
	for _, in := range final.ins {
		switch in.cmd {
		case "USER":
			if c.User != in.args {
				t.Errorf("USER %s, image user %q", in.args, c.User)
			}
		case "ENTRYPOINT", "CMD":
			want, _ := execForm(in.args)
			got := c.Entrypoint
			if in.cmd == "CMD" {
				got = c.Cmd
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s %s, image %q", in.cmd, in.args, got)
			}
		case "VOLUME":
			want, _ := execForm(in.args)
			got := slices.Sorted(maps.Keys(c.Volumes))
			if slices.Sort(want); !slices.Equal(got, want) {
				t.Errorf("VOLUME %s, image %q", in.args, got)
			}
		case "EXPOSE":
			var want []string
			for _, p := range exposedPorts(final) {
				want = append(want, p+"/tcp")
			}
			slices.Sort(want)
			if got := slices.Sorted(maps.Keys(c.ExposedPorts)); !slices.Equal(got, want) {
				t.Errorf("EXPOSE %s, image %q", in.args, got)
			}
		case "STOPSIGNAL":
			if c.StopSignal != in.args {
				t.Errorf("STOPSIGNAL %s, image %q", in.args, c.StopSignal)
			}
		case "HEALTHCHECK":
			flags, argv := healthFlags(t, in.args)
			hc := c.Healthcheck
			if hc == nil {
				t.Errorf("HEALTHCHECK %s, image has none", in.args)
				continue
			}
			if !slices.Equal(hc.Test, append([]string{"CMD"}, argv...)) {
				t.Errorf("HEALTHCHECK CMD %q, image %q", argv, hc.Test)
			}
			for k, got := range map[string]time.Duration{"interval": hc.Interval, "timeout": hc.Timeout, "start-period": hc.StartPeriod} {
				if want, err := time.ParseDuration(flags[k]); err != nil || got != want {
					t.Errorf("HEALTHCHECK --%s=%s, image %v", k, flags[k], got)
				}
			}
			if want, _ := strconv.Atoi(flags["retries"]); hc.Retries != want {
				t.Errorf("HEALTHCHECK --retries=%s, image %d", flags["retries"], hc.Retries)
			}
		}
	}

	// Every COPY destination exists with the Dockerfile's ownership, and
	// nothing else does beyond their parent directories.
	allowed := map[string]bool{}
	for _, in := range final.ins {
		if in.cmd != "COPY" {
			continue
		}
		f := strings.Fields(in.args)
		dst := f[len(f)-1]
		h, ok := img.files[dst]
		if !ok {
			t.Errorf("COPY %s: not in the image", in.args)
			continue
		}
		owner := "0:0"
		for _, o := range f {
			if s, ok := strings.CutPrefix(o, "--chown="); ok {
				owner = s
			}
		}
		if got := fmt.Sprintf("%d:%d", h.Uid, h.Gid); got != owner {
			t.Errorf("COPY %s: %s owned by %s, want %s", in.args, dst, got, owner)
		}
		for p := dst; p != "/"; p = path.Dir(p) {
			allowed[p] = true
		}
		if !strings.Contains(in.args, "--from=") {
			if src := readRepoFile(t, f[len(f)-2]); string(img.data[dst]) != src {
				t.Errorf("%s in the image differs from %s", dst, f[len(f)-2])
			}
		}
	}
	for p, h := range img.files {
		if !allowed[p] {
			t.Errorf("%s is in the image but no COPY puts it there", p)
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir {
			t.Errorf("%s: tar type %q, want only files and directories (no links, no shell)", p, h.Typeflag)
		}
	}
	if h := img.files["/popgate"]; h == nil || h.Mode&0o111 == 0 {
		t.Error("/popgate is not executable")
	}

	// The build stage writes passwd and group with echo; the image must
	// hold the same lines.
	for _, name := range []string{"passwd", "group"} {
		m := regexp.MustCompile(`echo '([^']*)' > /out/` + name).FindStringSubmatch(buildStageRuns(stages))
		if m == nil {
			t.Errorf("no echo into /out/%s in the build stage", name)
			continue
		}
		if got := string(img.data["/etc/"+name]); got != m[1]+"\n" {
			t.Errorf("/etc/%s = %q, the Dockerfile writes %q", name, got, m[1])
		}
	}
}

// buildStageRuns joins the RUN instructions of every stage but the last.
func buildStageRuns(stages []dfStage) string {
	var b strings.Builder
	for _, st := range stages[:len(stages)-1] {
		for _, in := range st.ins {
			if in.cmd == "RUN" {
				b.WriteString(in.args + "\n")
			}
		}
	}
	return b.String()
}

// TestMkimageRefusesBadInput: a dynamically linked binary cannot run in
// an image without a loader, and missing inputs are named.
func TestMkimageRefusesBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/mkimage")
	}
	dir := t.TempDir()
	mk := filepath.Join(dir, "mkimage")
	build := exec.Command("go", "build", "-o", mk, "../mkimage")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	dynamic := ""
	for _, p := range []string{"/bin/ls", "/usr/bin/env"} {
		if _, err := os.Stat(p); err == nil {
			dynamic = p
			break
		}
	}
	notELF := filepath.Join(dir, "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-binary", filepath.Join(dir, "none")}, "binary:"},
		{[]string{"-binary", notELF}, "binary:"},
		{[]string{"-binary", mk, "-config", filepath.Join(dir, "none.toml")}, "configuration:"},
		{[]string{"-binary", mk, "-config", "../../contrib/docker/popgate.toml", "-certs", filepath.Join(dir, "none.crt")}, "CA certificates"},
		{[]string{"extra"}, "unexpected arguments"},
	}
	if dynamic != "" {
		cases = append(cases, struct {
			args []string
			want string
		}{[]string{"-binary", dynamic}, "dynamically linked"})
	}
	for _, tc := range cases {
		out := filepath.Join(dir, "out.tar")
		b, err := exec.Command(mk, append(tc.args, "-o", out)...).CombinedOutput()
		if err == nil || !strings.Contains(string(b), tc.want) {
			t.Errorf("mkimage %q: %v %s; want an error with %q", tc.args, err, b, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("mkimage %q left %s behind", tc.args, out)
		}
	}
}
