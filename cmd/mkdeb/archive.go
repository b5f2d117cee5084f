package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"
)

// entry is one file, directory or symbolic link of a package tarball.
type entry struct {
	path   string // absolute
	mode   int64  // permission bits
	data   []byte // a regular file's contents
	link   string // a symbolic link's target
	dir    bool
	config bool // a conffile: dpkg keeps the administrator's changes
}

// tarGz writes entries as a gzip-compressed tar owned by root, with every
// parent directory before its children, as dpkg-deb does: names start
// with "./".
func tarGz(entries []entry, mtime time.Time) ([]byte, error) {
	all := map[string]entry{}
	for _, e := range entries {
		all[e.path] = e
		for d := path.Dir(e.path); d != "/"; d = path.Dir(d) {
			if _, ok := all[d]; !ok {
				all[d] = entry{path: d, mode: 0o755, dir: true}
			}
		}
	}
	paths := slices.Sorted(maps.Keys(all))
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	gz.ModTime = mtime
	tw := tar.NewWriter(gz)
	root := &tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime, Uname: "root", Gname: "root", Format: tar.FormatGNU}
	if err := tw.WriteHeader(root); err != nil {
		return nil, err
	}
	for _, p := range paths {
		e := all[p]
		h := &tar.Header{Name: "." + p, Mode: e.mode, ModTime: mtime, Uname: "root", Gname: "root", Format: tar.FormatGNU}
		switch {
		case e.dir:
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case e.link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.link, 0o777
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", p, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// arMember is one member of the package's ar archive.
type arMember struct {
	name string
	data []byte
}

// arArchive writes the common ar format that dpkg reads (deb(5)): the
// magic line, then for each member a 60-byte header and the data padded
// to an even length.
func arArchive(members []arMember, mtime time.Time) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("!<arch>\n")
	for _, m := range members {
		if len(m.name) > 16 || strings.ContainsAny(m.name, " /") {
			return nil, fmt.Errorf("ar: member name %q", m.name)
		}
		fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8o%-10d`\n", m.name, mtime.Unix(), 0, 0, 0o100644, len(m.data))
		b.Write(m.data)
		if len(m.data)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes(), nil
}
