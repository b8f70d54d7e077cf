// Package bench holds what the `strata bench` harness measures with and
// reports through: latency percentiles, the machine description, the JSON
// and table output, process RSS sampling, progress bars, scratch databases,
// and the raw Kafka and Postgres baselines the platform is compared with.
// It knows nothing of the domain; cmd/strata wires the scenarios.
package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
)

// Report is one scenario's result. Its JSON form is the output contract of
// `strata bench --json`:
//
//	{"scenario", "machine":{…}, "params":{…}, "metrics":{name: number}, "ratios":{name: number}}
//
// Metric and ratio values are always finite: Set refuses NaN and ±Inf.
type Report struct {
	Scenario string
	// Available is false for a scenario that cannot run in this build.
	Available bool
	Machine   Machine
	Params    Values[any]
	Metrics   Values[float64]
	Ratios    Values[float64]
	// Explain says in words what a ratio compares, for the table.
	Explain map[string]string
	// Notes are printed under the table.
	Notes []string
}

// NewReport returns an empty, available report for a scenario.
func NewReport(scenario string) *Report {
	return &Report{Scenario: scenario, Available: true, Machine: ThisMachine(), Explain: map[string]string{}}
}

// Metric records a metric. A non-finite value is recorded as -1 with a note,
// so the JSON stays valid and the problem stays visible.
func (r *Report) Metric(name string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		r.Notes = append(r.Notes, fmt.Sprintf("metric %s was not finite (%v); reported as -1", name, v))
		v = -1
	}
	r.Metrics.Set(name, v)
}

// Ratio records value/baseline under name; the table says it as
// "<subject> = <ratio> × <baseline>". A zero baseline records -1.
func (r *Report) Ratio(name, subject string, value, baselineValue float64, baseline string) {
	v := -1.0
	if baselineValue > 0 && !math.IsNaN(value) && !math.IsInf(value, 0) {
		v = value / baselineValue
	}
	r.Ratios.Set(name, v)
	r.Explain[name] = fmt.Sprintf("%s = %.2f × %s", subject, v, baseline)
}

// MarshalJSON renders the output contract.
func (r *Report) MarshalJSON() ([]byte, error) {
	out := map[string]any{
		"scenario": r.Scenario,
		"machine":  r.Machine,
		"params":   r.Params.Map(),
		"metrics":  r.Metrics.Map(),
		"ratios":   r.Ratios.Map(),
	}
	if !r.Available {
		out["available"] = false
	}
	return json.Marshal(out)
}

// WriteJSON writes the report as one line of JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// WriteTable writes the report for people: the machine, the parameters,
// then every metric and ratio in the order they were recorded.
func (r *Report) WriteTable(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "strata bench %s — %s/%s, %d CPUs, %s, %s, %s\n", r.Scenario, m.GOOS, m.GOARCH, m.CPUs,
		orDash(m.CPUModel), m.GoVersion, orDash(m.Hostname))
	if !r.Available {
		fmt.Fprintln(w, "not available")
	}
	if len(r.Params.keys) > 0 {
		var ps []string
		for _, k := range r.Params.keys {
			ps = append(ps, fmt.Sprintf("%s=%v", k, r.Params.m[k]))
		}
		fmt.Fprintf(w, "params: %s\n", strings.Join(ps, " "))
	}
	width := 0
	for _, k := range append(slices.Clone(r.Metrics.keys), r.Ratios.keys...) {
		width = max(width, len(k))
	}
	if len(r.Metrics.keys) > 0 {
		fmt.Fprintln(w)
		for _, k := range r.Metrics.keys {
			fmt.Fprintf(w, "  %-*s %14s\n", width, k, number(r.Metrics.m[k]))
		}
	}
	if len(r.Ratios.keys) > 0 {
		fmt.Fprintln(w)
		for _, k := range r.Ratios.keys {
			fmt.Fprintf(w, "  %-*s %14s  %s\n", width, k, number(r.Ratios.m[k]), r.Explain[k])
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// number prints integers as integers and others with three decimals.
func number(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

// Values is a map that remembers insertion order, for the table.
type Values[T any] struct {
	keys []string
	m    map[string]T
}

// Set records name = v; a second Set of name keeps its first position.
func (v *Values[T]) Set(name string, x T) {
	if v.m == nil {
		v.m = map[string]T{}
	}
	if _, ok := v.m[name]; !ok {
		v.keys = append(v.keys, name)
	}
	v.m[name] = x
}

// Map returns the values as a map (never nil).
func (v *Values[T]) Map() map[string]T {
	if v.m == nil {
		return map[string]T{}
	}
	return v.m
}

// Machine describes where a report was measured.
type Machine struct {
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	CPUModel  string `json:"cpu_model,omitempty"`
	Hostname  string `json:"hostname,omitempty"`
	// Postgres is the server version, when the scenario reached one.
	Postgres string `json:"postgres,omitempty"`
}

// ThisMachine describes the running machine; the CPU model is read from
// /proc/cpuinfo where there is one.
func ThisMachine() Machine {
	host, _ := os.Hostname()
	return Machine{
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(),
		GoVersion: runtime.Version(), CPUModel: cpuModel(), Hostname: host,
	}
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
