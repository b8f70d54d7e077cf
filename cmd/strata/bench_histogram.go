package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// relayDelayMetric is the relay's histogram of the time from an event's
// append to Kafka's acknowledgement (commands.RelayConfig.Metrics).
const relayDelayMetric = "strata_relay_publish_delay_seconds"

// histogram is a Prometheus histogram summed over its series: cumulative
// counts per upper bound, the last bound +Inf.
type histogram struct {
	bounds []float64
	counts []uint64
}

// scrapeHistogram reads name from the target's /metrics, summing its
// series (one per service). A target without the metric gives an empty
// histogram.
func scrapeHistogram(ctx context.Context, c *apiClient, name string) (histogram, error) {
	var raw []byte
	status, _, err := c.do(ctx, http.MethodGet, "/metrics", nil, &raw)
	if err != nil {
		return histogram{}, err
	}
	if status != http.StatusOK {
		return histogram{}, fmt.Errorf("GET /metrics: status %d", status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return histogram{}, fmt.Errorf("GET /metrics: %w", err)
	}
	var h histogram
	if f := families[name]; f != nil && f.GetType() == dto.MetricType_HISTOGRAM {
		for _, m := range f.GetMetric() {
			if err := h.add(m.GetHistogram()); err != nil {
				return histogram{}, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return h, nil
}

func (h *histogram) add(p *dto.Histogram) error {
	var buckets []*dto.Bucket
	for _, b := range p.GetBucket() {
		if !math.IsInf(b.GetUpperBound(), 1) { // the text format lists +Inf too
			buckets = append(buckets, b)
		}
	}
	if h.bounds == nil {
		for _, b := range buckets {
			h.bounds = append(h.bounds, b.GetUpperBound())
		}
		h.bounds = append(h.bounds, math.Inf(1))
		h.counts = make([]uint64, len(h.bounds))
	}
	if len(buckets)+1 != len(h.bounds) {
		return fmt.Errorf("series with %d buckets, another with %d", len(buckets), len(h.bounds)-1)
	}
	for i, b := range buckets {
		if b.GetUpperBound() != h.bounds[i] {
			return fmt.Errorf("series with different buckets")
		}
		h.counts[i] += b.GetCumulativeCount()
	}
	h.counts[len(buckets)] += p.GetSampleCount()
	return nil
}

// since returns what h counted after earlier, a scrape of the same target.
// ok is false when the two cannot be one target's: other buckets, or a
// count that went down (the target restarted, or another instance
// answered).
func (h histogram) since(earlier histogram) (histogram, bool) {
	if earlier.bounds == nil {
		return h, true
	}
	if !slices.Equal(h.bounds, earlier.bounds) {
		return histogram{}, false
	}
	d := histogram{bounds: h.bounds, counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		if h.counts[i] < earlier.counts[i] {
			return histogram{}, false
		}
		d.counts[i] = h.counts[i] - earlier.counts[i]
	}
	return d, true
}

// total is the number of observations.
func (h histogram) total() uint64 {
	if len(h.counts) == 0 {
		return 0
	}
	return h.counts[len(h.counts)-1]
}

// quantile estimates the q-quantile as Prometheus's histogram_quantile
// does: linear within the bucket that holds it, the lower bound of the
// first bucket taken as 0, and the last finite bound for the +Inf bucket.
func (h histogram) quantile(q float64) float64 {
	n := h.total()
	if n == 0 {
		return math.NaN()
	}
	rank := q * float64(n)
	for i, c := range h.counts {
		if float64(c) < rank {
			continue
		}
		if math.IsInf(h.bounds[i], 1) {
			return h.bounds[max(i-1, 0)]
		}
		lower, below := 0.0, uint64(0)
		if i > 0 {
			lower, below = h.bounds[i-1], h.counts[i-1]
		}
		in := c - below
		if in == 0 {
			return h.bounds[i]
		}
		return lower + (h.bounds[i]-lower)*(rank-float64(below))/float64(in)
	}
	return h.bounds[len(h.bounds)-1]
}
