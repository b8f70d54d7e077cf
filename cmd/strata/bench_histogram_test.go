package main

import (
	"math"
	"testing"

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
	d := after.since(before)
	if d.total() != 100 {
		t.Fatalf("total %d, want 100", d.total())
	}
	// 50 in (0.01, 0.02], 40 in (0.02, 0.04], 10 above 0.04.
	for _, c := range []struct{ q, want float64 }{{0.25, 0.015}, {0.5, 0.02}, {0.7, 0.03}, {0.95, 0.04}} {
		if got := d.quantile(c.q); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
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
