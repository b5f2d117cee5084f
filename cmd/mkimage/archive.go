package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// image is everything one archive holds.
type image struct {
	spec    runConfig
	arch    string
	files   []file
	created time.Time
	tags    []string
}

// imageConfig is the image configuration blob (the Docker image JSON,
// a superset of the OCI one: it keeps Healthcheck, which the OCI
// configuration has no field for, and which Podman reads only from
// Docker-format images).
type imageConfig struct {
	Architecture string    `json:"architecture"`
	OS           string    `json:"os"`
	Created      time.Time `json:"created"`
	Config       runConfig `json:"config"`
	RootFS       struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []struct {
		Created   time.Time `json:"created"`
		CreatedBy string    `json:"created_by"`
	} `json:"history"`
}

// manifestEntry is one image of a docker-archive's manifest.json, the
// format `docker save` writes and `docker load` and `podman load` read.
type manifestEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// layerTar returns the uncompressed tar of the image's single layer.
func layerTar(files []file, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		name := strings.TrimPrefix(f.path, "/")
		h := &tar.Header{Name: name, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: mtime, Format: tar.FormatUSTAR}
		if f.dir {
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", f.path, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", f.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// archive returns the docker-archive bytes of img.
func archive(img image) ([]byte, error) {
	layer, err := layerTar(img.files, img.created)
	if err != nil {
		return nil, err
	}
	layerID := digest(layer)
	cfg := imageConfig{Architecture: img.arch, OS: "linux", Created: img.created, Config: img.spec}
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = []string{"sha256:" + layerID}
	cfg.History = append(cfg.History, struct {
		Created   time.Time `json:"created"`
		CreatedBy string    `json:"created_by"`
	}{img.created, "mkimage: FROM scratch, COPY /popgate, CA bundle, " + confPath})
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgName := digest(cfgJSON) + ".json"
	layerName := layerID + "/layer.tar"
	manifest, err := json.Marshal([]manifestEntry{{Config: cfgName, RepoTags: img.tags, Layers: []string{layerName}}})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, typ byte, data []byte) error {
		h := &tar.Header{Name: name, Typeflag: typ, Mode: 0o644, Size: int64(len(data)), ModTime: img.created, Format: tar.FormatUSTAR}
		if typ == tar.TypeDir {
			h.Mode, h.Size = 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("archive: %s: %w", name, err)
		}
		_, err := tw.Write(data)
		return err
	}
	for _, e := range []struct {
		name string
		typ  byte
		data []byte
	}{
		{layerID + "/", tar.TypeDir, nil},
		{layerName, tar.TypeReg, layer},
		{cfgName, tar.TypeReg, cfgJSON},
		{"manifest.json", tar.TypeReg, manifest},
	} {
		if err := add(e.name, e.typ, e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeArchive writes img to path through a temporary file in the same
// directory, so that a failed run leaves no half-written archive.
func writeArchive(path string, img image) error {
	b, err := archive(img)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mkimage-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}
