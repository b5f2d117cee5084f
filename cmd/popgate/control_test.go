package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestControlRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "control.sock")
	h := map[string]controlHandler{
		"echo": func(_ context.Context, args []string) (any, error) { return args, nil },
		"fail": func(context.Context, []string) (any, error) { return nil, errors.New("no such grant") },
	}
	s, err := listenControl(path, h, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	go s.serve(ctx)
	defer s.close()

	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want 0600", st.Mode().Perm())
	}
	var got []string
	if err := callControl(ctx, path, "echo", []string{"a", "b"}, &got); err != nil || strings.Join(got, ",") != "a,b" {
		t.Fatalf("echo = %v, %v", got, err)
	}
	if err := callControl(ctx, path, "fail", nil, nil); err == nil || err.Error() != "no such grant" {
		t.Errorf("fail = %v", err)
	}
	if err := callControl(ctx, path, "nope", nil, nil); err == nil || !strings.Contains(err.Error(), `unknown control command "nope"`) {
		t.Errorf("unknown = %v", err)
	}
	// Garbage on the socket gets an error reply; the server keeps serving.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("{not json\n"))
	buf, _ := io.ReadAll(c)
	c.Close()
	if !strings.Contains(string(buf), "malformed request") {
		t.Errorf("garbage reply = %q", buf)
	}
	if err := callControl(ctx, path, "echo", []string{"still"}, &got); err != nil {
		t.Errorf("server stopped after garbage: %v", err)
	}
	// A second server on the same socket refuses to start.
	if _, err := listenControl(path, h, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "another popgate is running") {
		t.Errorf("second server: %v", err)
	}
}

func TestControlNotRunning(t *testing.T) {
	err := callControl(context.Background(), filepath.Join(t.TempDir(), "none.sock"), "health", nil, nil)
	if !errors.Is(err, errNotRunning) {
		t.Fatalf("err = %v, want errNotRunning", err)
	}
}
