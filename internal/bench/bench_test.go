package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestLatenciesNearestRank(t *testing.T) {
	var l Latencies
	for i := 100; i >= 1; i-- { // out of order on purpose
		l.Add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0, time.Millisecond}, {0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond},
		{0.999, 100 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := l.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if l.Mean() != 50500*time.Microsecond || l.Max() != 100*time.Millisecond {
		t.Errorf("mean %v max %v", l.Mean(), l.Max())
	}
	var empty Latencies
	if empty.Quantile(0.99) != 0 || empty.Max() != 0 || empty.Mean() != 0 {
		t.Error("an empty Latencies is not all zero")
	}
}

func TestReportKeepsJSONFinite(t *testing.T) {
	r := NewReport("x")
	r.Metric("good", 1.5)
	r.Metric("bad", math.Inf(1))
	r.Ratio("r", "a", 1, 0, "nothing")
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Metrics map[string]float64 `json:"metrics"`
		Ratios  map[string]float64 `json:"ratios"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Metrics["good"] != 1.5 || got.Metrics["bad"] != -1 || got.Ratios["r"] != -1 {
		t.Errorf("got %+v", got)
	}
	buf.Reset()
	_ = r.WriteTable(&buf)
	if !strings.Contains(buf.String(), "note: metric bad was not finite") {
		t.Errorf("the table hides the non-finite metric:\n%s", buf.String())
	}
}

func TestCPUParsers(t *testing.T) {
	// utime 1234, stime 566 ticks; the name holds a space and a ')'.
	stat := "4242 (strata x)) S 1 4242 4242 0 -1 4194304 100 0 0 0 1234 566 0 0 20 0 12 0 100 1000000 2000 18446744073709551615"
	if got := processCPU(stat); got != 18 {
		t.Errorf("processCPU = %v, want 18", got)
	}
	for _, bad := range []string{"", "4242 strata S 1", "4242 (strata) S 1 2 3"} {
		if got := processCPU(bad); got != -1 {
			t.Errorf("processCPU(%q) = %v, want -1", bad, got)
		}
	}
	// busy: user 100 + nice 1 + system 20 + irq 3 + softirq 4 + steal 2;
	// idle 900 and iowait 50 are not.
	host := "cpu  100 1 20 900 50 3 4 2 0 0\ncpu0 50 0 10 450 25 1 2 1 0 0\n"
	if got := hostCPU(host); got != 1.3 {
		t.Errorf("hostCPU = %v, want 1.3", got)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 x 4 5 6 7 8"} {
		if got := hostCPU(bad); got != -1 {
			t.Errorf("hostCPU(%q) = %v, want -1", bad, got)
		}
	}
	if runtime.GOOS != "linux" {
		return
	}
	// Spin until the process has used a clock tick (10ms) of CPU.
	c := ReadCPU()
	for deadline := time.Now().Add(5 * time.Second); c.Process == 0 && time.Now().Before(deadline); c = ReadCPU() {
		for i := 0; i < 1e6; i++ {
			_ = strings.Repeat("x", i%8)
		}
	}
	if c.Process <= 0 || c.Host < c.Process {
		t.Errorf("ReadCPU on Linux = %+v, want 0 < Process <= Host", c)
	}
}
