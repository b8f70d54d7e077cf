package bench

import (
	"bytes"
	"encoding/json"
	"math"
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
