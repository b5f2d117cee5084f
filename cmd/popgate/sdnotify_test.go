package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// listenNotify binds a unixgram socket like systemd's notify socket.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	addr := &net.UnixAddr{Name: name, Net: "unixgram"}
	if strings.HasPrefix(name, "@") {
		addr.Name = "\x00" + name[1:]
	}
	c, err := net.ListenUnixgram("unixgram", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readDatagram(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestSdNotifyPathSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	c := listenNotify(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	for _, state := range []string{"READY=1", "STATUS=serving 5 listeners\nMAINPID=42", "STOPPING=1"} {
		if err := sdNotify(state); err != nil {
			t.Fatal(err)
		}
		if got := readDatagram(t, c); got != state {
			t.Errorf("got %q, want %q", got, state)
		}
	}
}

func TestSdNotifyAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@popgate-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	c := listenNotify(t, name)
	t.Setenv("NOTIFY_SOCKET", name)
	if err := sdNotify("READY=1"); err != nil {
		t.Fatal(err)
	}
	if got := readDatagram(t, c); got != "READY=1" {
		t.Errorf("got %q", got)
	}
}

func TestSdNotifyUnsetIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Errorf("unset NOTIFY_SOCKET: %v", err)
	}
}

func TestSdNotifyErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ socket, want string }{
		{filepath.Join(dir, "missing"), "sd_notify: "},
		{"relative/notify", "neither a path nor an abstract socket"},
		{"vsock:2:1234", "neither a path nor an abstract socket"},
		{"@popgate-no-such-abstract-socket-" + fmt.Sprint(time.Now().UnixNano()), "sd_notify: "},
	} {
		t.Setenv("NOTIFY_SOCKET", tc.socket)
		if err := sdNotify("READY=1"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NOTIFY_SOCKET=%q: %v, want an error containing %q", tc.socket, err, tc.want)
		}
	}
}

// unitSettings parses a systemd unit file into section.key → values (a
// key may repeat). It rejects lines outside a section and lines that are
// neither a section, a comment nor key=value.
func unitSettings(text string) (map[string][]string, error) {
	out := map[string][]string{}
	section := ""
	for i, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.TrimSpace(k) == "" {
				return nil, fmt.Errorf("line %d: %q is not key=value in a section", i+1, line)
			}
			key := section + "." + strings.TrimSpace(k)
			out[key] = append(out[key], strings.TrimSpace(v))
		}
	}
	return out, nil
}

// unitProblems lists what popgate's unit must have and lacks.
func unitProblems(u map[string][]string) []string {
	var p []string
	one := func(key string) string {
		if v := u[key]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	for key, want := range map[string]string{
		"Service.Type":                    "notify",
		"Service.NoNewPrivileges":         "yes",
		"Service.ProtectSystem":           "strict",
		"Service.ProtectHome":             "yes",
		"Service.PrivateTmp":              "yes",
		"Service.PrivateDevices":          "yes",
		"Service.CapabilityBoundingSet":   "CAP_NET_BIND_SERVICE",
		"Service.AmbientCapabilities":     "CAP_NET_BIND_SERVICE",
		"Service.RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"Service.RestrictNamespaces":      "yes",
		"Service.RestrictSUIDSGID":        "yes",
		"Service.LockPersonality":         "yes",
		"Service.MemoryDenyWriteExecute":  "yes",
		"Service.SystemCallArchitectures": "native",
		"Service.StateDirectory":          "popgate",
		"Service.UMask":                   "0077",
		"Install.WantedBy":                "multi-user.target",
	} {
		if got := one(key); got != want {
			p = append(p, fmt.Sprintf("%s=%q, want %q", key, got, want))
		}
	}
	if !slices.Contains(u["Service.SystemCallFilter"], "@system-service") {
		p = append(p, "SystemCallFilter lacks @system-service")
	}
	if user := one("Service.User"); user == "" || user == "root" || user == "0" {
		p = append(p, fmt.Sprintf("User=%q: popgate must not run as root", user))
	}
	if !strings.Contains(one("Service.ExecStart"), " serve --config ") {
		p = append(p, "ExecStart does not run popgate serve --config")
	}
	if rw := one("Service.ReadWritePaths"); !strings.Contains(rw, "/var/lib/popgate") {
		p = append(p, fmt.Sprintf("ReadWritePaths=%q lacks /var/lib/popgate", rw))
	}
	// `systemctl reload` must reach popgate's SIGHUP reload.
	if r := one("Service.ExecReload"); !strings.Contains(r, "-HUP $MAINPID") {
		p = append(p, "ExecReload does not send SIGHUP to popgate")
	}
	// systemd must let popgate drain before it kills it.
	if d, err := time.ParseDuration(one("Service.TimeoutStopSec")); err != nil || d <= shutdownTimeout {
		p = append(p, fmt.Sprintf("TimeoutStopSec=%q must exceed popgate's %v drain", one("Service.TimeoutStopSec"), shutdownTimeout))
	}
	return p
}

// TestSystemdUnit checks contrib/systemd/popgate.service for its
// hardening and lifecycle lines, and that the configuration shipped
// beside it loads and keeps its data where the unit may write.
func TestSystemdUnit(t *testing.T) {
	text := readRepoFile(t, "contrib/systemd/popgate.service")
	u, err := unitSettings(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, prob := range unitProblems(u) {
		t.Error(prob)
	}
	exec := u["Service.ExecStart"][0]
	_, confPath, ok := strings.Cut(exec, "--config ")
	if !ok || confPath != "/etc/popgate/popgate.toml" {
		t.Fatalf("ExecStart %q: want --config /etc/popgate/popgate.toml", exec)
	}
	cfg, err := loadConfig(filepath.Join("..", "..", "contrib", "systemd", "popgate.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/"+u["Service.StateDirectory"][0] {
		t.Errorf("data_dir %s is not the unit's StateDirectory", cfg.DataDir)
	}
	if cfg.Log.Format != "text" {
		t.Errorf("log.format %q: the fail2ban filter reads the text form", cfg.Log.Format)
	}
	sysusers := readRepoFile(t, "contrib/systemd/popgate.sysusers")
	if !strings.Contains(sysusers, "u "+u["Service.User"][0]+" ") {
		t.Errorf("popgate.sysusers does not create the unit's user %s", u["Service.User"][0])
	}
}

// TestSystemdUnitChecksCatchMistakes: each weakened unit is reported.
func TestSystemdUnitChecksCatchMistakes(t *testing.T) {
	good := readRepoFile(t, "contrib/systemd/popgate.service")
	for _, tc := range []struct{ old, new, want string }{
		{"\nType=notify", "\nType=simple", "Service.Type"},
		{"User=popgate", "User=root", "must not run as root"},
		{"User=popgate\n", "", "must not run as root"},
		{"NoNewPrivileges=yes", "NoNewPrivileges=no", "Service.NoNewPrivileges"},
		{"CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SYS_ADMIN", "Service.CapabilityBoundingSet"},
		{"TimeoutStopSec=45s", "TimeoutStopSec=10s", "must exceed"},
		{"ExecReload=/bin/kill -HUP $MAINPID\n", "", "SIGHUP"},
		{"SystemCallFilter=@system-service\n", "", "@system-service"},
	} {
		if !strings.Contains(good, tc.old) {
			t.Fatalf("the unit no longer contains %q: update this case", tc.old)
		}
		u, err := unitSettings(strings.Replace(good, tc.old, tc.new, 1))
		if err != nil {
			t.Fatal(err)
		}
		probs := unitProblems(u)
		if !slices.ContainsFunc(probs, func(s string) bool { return strings.Contains(s, tc.want) }) {
			t.Errorf("%q → %q: problems %q lack %q", tc.old, tc.new, probs, tc.want)
		}
	}
	for _, bad := range []string{"Type=notify\n", "[Service]\nnot a setting\n", "[Service]\n=x\n"} {
		if _, err := unitSettings(bad); err == nil {
			t.Errorf("unitSettings(%q) succeeded", bad)
		}
	}
}
