package bench

import (
	"bufio"
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// RSS samples this process's resident set size from /proc/self/status.
type RSS struct {
	mu   sync.Mutex
	peak int64 // bytes; -1 when unreadable
	stop func()
	done chan struct{}
}

// StartRSS samples VmRSS and VmHWM every interval until Stop. Where
// /proc/self/status cannot be read (not Linux), Peak is -1.
func StartRSS(interval time.Duration) *RSS {
	r := &RSS{peak: -1, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	r.sample()
	go func() {
		defer close(r.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				r.sample()
				return
			case <-t.C:
				r.sample()
			}
		}
	}()
	return r
}

func (r *RSS) sample() {
	rss, hwm := readStatus()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.peak = max(r.peak, rss, hwm)
}

// Stop ends sampling after one last sample.
func (r *RSS) Stop() {
	r.stop()
	<-r.done
}

// PeakMiB is the highest resident set size seen, in MiB, or -1.
func (r *RSS) PeakMiB() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.peak < 0 {
		return -1
	}
	return float64(r.peak) / (1 << 20)
}

// readStatus returns VmRSS and VmHWM in bytes, -1 for each it cannot read.
func readStatus() (rss, hwm int64) {
	rss, hwm = -1, -1
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		fields := strings.Fields(v) // "123456 kB"
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	return
}

// Bar is a progress bar on w. It draws only when w is a terminal and quiet
// is false; otherwise every method is a no-op, so callers need no checks.
type Bar struct{ pb *progressbar.ProgressBar }

// NewBar returns a bar counting to max (in units, e.g. events or
// milliseconds) with a description.
func NewBar(w io.Writer, quiet bool, max int64, desc string) *Bar {
	if quiet || !IsTerminal(w) {
		return &Bar{}
	}
	return &Bar{pb: progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionClearOnFinish(),
	)}
}

// Set moves the bar to n.
func (b *Bar) Set(n int64) {
	if b.pb != nil {
		_ = b.pb.Set64(n)
	}
}

// Describe changes the description, e.g. to show a live rate.
func (b *Bar) Describe(desc string) {
	if b.pb != nil {
		b.pb.Describe(desc)
	}
}

// Done finishes and clears the bar.
func (b *Bar) Done() {
	if b.pb != nil {
		_ = b.pb.Finish()
	}
}

// IsTerminal reports whether w is a character device (a terminal).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// CPU is a reading of CPU time in seconds, -1 where it cannot be read (not
// Linux): Process is this process's user and system time, Host the whole
// machine's busy time (every CPU's user, nice, system, irq, softirq and
// steal time: all but idle and I/O wait).
type CPU struct {
	Process, Host float64
}

// clockTicks is the unit of /proc's CPU times (USER_HZ), 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// ReadCPU reads /proc/self/stat and /proc/stat.
func ReadCPU() CPU {
	c := CPU{Process: -1, Host: -1}
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		c.Process = processCPU(string(b))
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		c.Host = hostCPU(string(b))
	}
	return c
}

// processCPU returns utime + stime, in seconds, of a /proc/<pid>/stat
// line, or -1. The command name (field 2) may hold spaces and parentheses,
// so the fields are counted from after its last ')'.
func processCPU(stat string) float64 {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(stat[i+1:]) // from field 3, state
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return -1
	}
	return float64(utime+stime) / clockTicks
}

// hostCPU returns the busy time, in seconds, of the "cpu" line of
// /proc/stat, or -1.
func hostCPU(stat string) float64 {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return -1
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system (idle iowait) irq softirq steal
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return -1
		}
		busy += n
	}
	return float64(busy) / clockTicks
}
