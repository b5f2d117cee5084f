// Command mkimage writes popgate's container image as an archive that
// `podman load` and `docker load` accept, without a daemon, a registry or
// a base image: the image is FROM scratch, so it is one layer built here
// from the static binary, the CA bundle and the container configuration.
//
//	go run ./cmd/mkimage -binary bin/popgate -version v1.2.3 -o bin/popgate-image.tar
//
// The image is the one the Dockerfile describes (user 65532, entrypoint
// /popgate, volumes /data and /etc/popgate, ports, health check, no shell);
// cmd/popgate's image_test.go builds an archive with this command and
// compares it with the Dockerfile, instruction by instruction.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	binary := fs.String("binary", "bin/popgate", "the static popgate binary")
	config := fs.String("config", "contrib/docker/popgate.toml", "the image's /etc/popgate/popgate.toml")
	certs := fs.String("certs", "/etc/ssl/certs/ca-certificates.crt", "the CA bundle to ship (Debian: package ca-certificates)")
	version := fs.String("version", "dev", "the version: the image tag and its org.opencontainers.image.version label")
	repo := fs.String("repo", "popgate", "the image name, tagged VERSION and latest")
	out := fs.String("o", "bin/popgate-image.tar", "the archive to write")
	epoch := fs.Int64("mtime", sourceDateEpoch(), "file times and creation time, in Unix seconds (default $SOURCE_DATE_EPOCH, else 0)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	arch, err := staticArch(*binary)
	if err != nil {
		return err
	}
	files, err := imageFiles(*binary, *config, *certs)
	if err != nil {
		return err
	}
	img := image{
		spec:    popgateSpec(*version),
		arch:    arch,
		files:   files,
		created: time.Unix(*epoch, 0).UTC(),
		tags:    []string{*repo + ":" + *version, *repo + ":latest"},
	}
	if err := writeArchive(*out, img); err != nil {
		return err
	}
	fi, err := os.Stat(*out)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %s/%s image %s, %d bytes\n", *out, "linux", arch, img.tags[0], fi.Size())
	return nil
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH (reproducible-builds.org), so
// that the same inputs give the same archive byte for byte.
func sourceDateEpoch() int64 {
	var n int64
	if _, err := fmt.Sscan(os.Getenv("SOURCE_DATE_EPOCH"), &n); err != nil {
		return 0
	}
	return n
}
