package main

import (
	"context"
	"math"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

func promHistogram(bounds []float64, cumulative []uint64, count uint64) *dto.Histogram {
	h := &dto.Histogram{SampleCount: &count}
	for i := range bounds {
		h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: &bounds[i], CumulativeCount: &cumulative[i]})
	}
	return h
}

// TestHistogramQuantile: series add up bucket by bucket, a later scrape
// minus an earlier one leaves what happened between, and quantiles
// interpolate within a bucket as Prometheus's histogram_quantile does.
func TestHistogramQuantile(t *testing.T) {
	bounds := []float64{0.01, 0.02, 0.04}
	var before, after histogram
	for _, err := range []error{
		before.add(promHistogram(bounds, []uint64{5, 5, 5}, 5)),
		after.add(promHistogram(bounds, []uint64{5, 55, 95}, 105)), // service one
		after.add(promHistogram(bounds, []uint64{0, 0, 0}, 0)),     // service two, idle
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	d, ok := after.since(before)
	if !ok || d.total() != 100 {
		t.Fatalf("total %d, want 100", d.total())
	}
	// 50 in (0.01, 0.02], 40 in (0.02, 0.04], 10 above 0.04.
	for _, c := range []struct{ q, want float64 }{{0.25, 0.015}, {0.5, 0.02}, {0.7, 0.03}, {0.95, 0.04}} {
		if got := d.quantile(c.q); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if _, ok := before.since(after); ok {
		t.Error("counts that went down gave a difference")
	}
	if !math.IsNaN((histogram{}).quantile(0.5)) {
		t.Error("the quantile of nothing is not NaN")
	}
	other := histogram{}
	if err := other.add(promHistogram([]float64{1}, []uint64{1}, 1)); err != nil {
		t.Fatal(err)
	}
	if err := other.add(promHistogram(bounds, []uint64{1, 1, 1}, 1)); err == nil {
		t.Error("series with other buckets added up")
	}
}

// TestScrapeHistogram reads a histogram as a target serves it: the text
// format lists the +Inf bucket too, and two series of one name add up.
func TestScrapeHistogram(t *testing.T) {
	reg := prometheus.NewRegistry()
	for _, svc := range []string{"auth", "account"} {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: relayDelayMetric, Help: "test",
			ConstLabels: prometheus.Labels{"service": svc}, Buckets: []float64{0.01, 0.02}})
		reg.MustRegister(h)
		for _, v := range []float64{0.005, 0.015, 0.015, 5} {
			h.Observe(v)
		}
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	got, err := scrapeHistogram(context.Background(), newAPIClient(srv.URL, 1), relayDelayMetric)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.bounds, []float64{0.01, 0.02, math.Inf(1)}) || !slices.Equal(got.counts, []uint64{2, 6, 8}) {
		t.Fatalf("scraped bounds %v counts %v, want [0.01 0.02 +Inf] and [2 6 8]", got.bounds, got.counts)
	}
	if q := got.quantile(0.5); math.Abs(q-0.01-0.01*2/4) > 1e-9 {
		t.Errorf("median %v, want 0.015", q)
	}
	none, err := scrapeHistogram(context.Background(), newAPIClient(srv.URL, 1), "strata_absent")
	if err != nil || none.total() != 0 {
		t.Errorf("an absent metric: %v, %v; want an empty histogram", none, err)
	}
}
