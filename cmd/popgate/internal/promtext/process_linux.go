package promtext

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ProcessCollector writes the process's metrics under the names
// Prometheus's Go client uses (process_cpu_seconds_total,
// process_resident_memory_bytes, process_open_fds…), read from /proc. A
// value it cannot read (no /proc in a chroot, say) is left out.
type ProcessCollector struct{}

// clockTicks is USER_HZ, the unit of /proc's times; 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// Collect reads /proc/self once and writes what it found.
func (ProcessCollector) Collect(w *Writer) {
	gauge := func(name, help string, v float64) { w.Single(name, help, "gauge", v) }
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpu := float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
		w.Single("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", cpu)
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		gauge("process_open_fds", "Number of open file descriptors.", float64(len(fds)))
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		gauge("process_max_fds", "Maximum number of open file descriptors.", float64(lim.Cur))
	}
	st, ok := readStat()
	if !ok {
		return
	}
	gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", float64(st.vsize))
	gauge("process_resident_memory_bytes", "Resident memory size in bytes.", float64(st.rss*uint64(os.Getpagesize())))
	if boot, ok := bootTime(); ok {
		gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
			float64(boot)+float64(st.start)/clockTicks)
	}
}

// stat is what ProcessCollector uses of /proc/self/stat.
type stat struct {
	start uint64 // clock ticks after boot
	vsize uint64 // bytes
	rss   uint64 // pages
}

// readStat parses /proc/self/stat (proc(5)): the fields after the command
// name, which is in parentheses and may hold spaces and parentheses.
func readStat() (stat, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return stat{}, false
	}
	return parseStat(b)
}

func parseStat(b []byte) (stat, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, false
	}
	// Fields from the state (field 3); starttime is field 22, vsize 23,
	// rss 24.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 {
		return stat{}, false
	}
	var st stat
	var err1, err2, err3 error
	st.start, err1 = strconv.ParseUint(f[22-3], 10, 64)
	st.vsize, err2 = strconv.ParseUint(f[23-3], 10, 64)
	st.rss, err3 = strconv.ParseUint(f[24-3], 10, 64)
	return st, err1 == nil && err2 == nil && err3 == nil
}

// bootTime is the btime line of /proc/stat: the boot in unix seconds.
func bootTime() (uint64, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
