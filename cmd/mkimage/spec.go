package main

import (
	"debug/elf"
	"fmt"
	"os"
	"time"
)

// The runtime user: not root, and numeric, since scratch has no user
// database for the runtime to resolve a name with.
const (
	runUID = 65532
	runGID = 65532
)

// confPath is where the image's configuration lives; CMD and the health
// check name it.
const confPath = "/etc/popgate/popgate.toml"

// healthcheck is the Docker image configuration's Healthcheck (durations
// in nanoseconds, as Docker and Podman store them).
type healthcheck struct {
	Test        []string      `json:"Test"`
	Interval    time.Duration `json:"Interval"`
	Timeout     time.Duration `json:"Timeout"`
	StartPeriod time.Duration `json:"StartPeriod"`
	Retries     int           `json:"Retries"`
}

// runConfig is the "config" object of a Docker/OCI image configuration:
// how a container of the image runs.
type runConfig struct {
	User         string              `json:"User"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts"`
	Env          []string            `json:"Env"`
	Entrypoint   []string            `json:"Entrypoint"`
	Cmd          []string            `json:"Cmd"`
	Volumes      map[string]struct{} `json:"Volumes"`
	WorkingDir   string              `json:"WorkingDir"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal"`
	Healthcheck  *healthcheck        `json:"Healthcheck"`
}

// popgateSpec is the run configuration of the Dockerfile's final stage.
func popgateSpec(version string) runConfig {
	set := func(keys ...string) map[string]struct{} {
		m := make(map[string]struct{}, len(keys))
		for _, k := range keys {
			m[k] = struct{}{}
		}
		return m
	}
	return runConfig{
		User: fmt.Sprintf("%d:%d", runUID, runGID),
		// SMTP (MX), POP3, submissions (implicit TLS), submission, POP3S.
		ExposedPorts: set("25/tcp", "110/tcp", "465/tcp", "587/tcp", "995/tcp"),
		// What docker build gives a scratch image that sets no ENV.
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Entrypoint: []string{"/popgate"},
		Cmd:        []string{"serve", "--config", confPath},
		Volumes:    set("/data", "/etc/popgate"),
		WorkingDir: "/",
		Labels:     map[string]string{"org.opencontainers.image.version": version, "org.opencontainers.image.title": "popgate"},
		StopSignal: "SIGTERM",
		Healthcheck: &healthcheck{
			Test:        []string{"CMD", "/popgate", "health", "--config", confPath},
			Interval:    30 * time.Second,
			Timeout:     5 * time.Second,
			StartPeriod: 10 * time.Second,
			Retries:     3,
		},
	}
}

// file is one entry of the image's only layer.
type file struct {
	path     string // absolute, without the leading slash in the tar
	mode     int64  // permission bits
	uid, gid int
	dir      bool
	data     []byte
}

// imageFiles reads the inputs and lays out the filesystem that the
// Dockerfile's final stage COPYs: no shell, no package manager, nothing
// but what popgate reads.
func imageFiles(binary, config, certs string) ([]file, error) {
	read := func(name, what string) ([]byte, error) {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return b, nil
	}
	bin, err := read(binary, "binary")
	if err != nil {
		return nil, err
	}
	conf, err := read(config, "configuration")
	if err != nil {
		return nil, err
	}
	ca, err := read(certs, "CA certificates (install ca-certificates or pass -certs)")
	if err != nil {
		return nil, err
	}
	dir := func(p string, uid int) file { return file{path: p, mode: 0o755, uid: uid, gid: uid, dir: true} }
	reg := func(p string, mode int64, b []byte) file { return file{path: p, mode: mode, data: b} }
	return []file{
		dir("/data", runUID), // owned by the runtime user: a fresh named volume starts writable
		dir("/etc", 0),
		reg("/etc/group", 0o644, fmt.Appendf(nil, "popgate:x:%d:\n", runGID)),
		reg("/etc/passwd", 0o644, fmt.Appendf(nil, "popgate:x:%d:%d:popgate:/data:/nonexistent\n", runUID, runGID)),
		dir("/etc/popgate", 0),
		reg(confPath, 0o644, conf),
		dir("/etc/ssl", 0),
		dir("/etc/ssl/certs", 0),
		reg("/etc/ssl/certs/ca-certificates.crt", 0o644, ca),
		reg("/popgate", 0o755, bin),
	}, nil
}

// staticArch returns the image architecture of a Linux ELF binary, and
// an error for one that needs a dynamic loader or shared libraries, which
// an image FROM scratch does not have.
func staticArch(binary string) (string, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return "", fmt.Errorf("binary: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("binary %s is dynamically linked: build it with CGO_ENABLED=0 (go tool task build)", binary)
		}
	}
	archs := map[elf.Machine]string{
		elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64", elf.EM_386: "386",
		elf.EM_ARM: "arm", elf.EM_PPC64: "ppc64le", elf.EM_S390: "s390x", elf.EM_RISCV: "riscv64",
	}
	arch, ok := archs[f.Machine]
	if !ok || f.Class == elf.ELFCLASS32 && arch != "386" && arch != "arm" {
		return "", fmt.Errorf("binary %s: no image architecture for %v", binary, f.Machine)
	}
	return arch, nil
}
