package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/strata-cqrs/strata/internal/testkit"
)

// benchJSON is the output contract of `strata bench --json`.
type benchJSON struct {
	Scenario  string             `json:"scenario"`
	Available *bool              `json:"available"`
	Machine   map[string]any     `json:"machine"`
	Params    map[string]any     `json:"params"`
	Metrics   map[string]float64 `json:"metrics"`
	Ratios    map[string]float64 `json:"ratios"`
}

// runBench runs `strata bench` through the CLI's entry point and returns
// its exit code, its parsed JSON (when it printed one) and its stderr.
func runBench(t *testing.T, args ...string) (int, *benchJSON, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append([]string{"bench"}, args...), &out, &errOut)
	if out.Len() == 0 {
		return code, nil, errOut.String()
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(out.Bytes(), &raw); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
	}
	for _, k := range []string{"scenario", "machine", "params", "metrics", "ratios"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("output lacks %q: %s", k, out.String())
		}
	}
	var rep benchJSON
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output does not follow the contract: %v\n%s", err, out.String())
	}
	if strings.Count(strings.TrimSpace(out.String()), "\n") != 0 {
		t.Fatalf("output is more than one line: %s", out.String())
	}
	return code, &rep, errOut.String()
}

// checkContract checks what every report holds: the machine, and finite
// metrics and ratios.
func checkContract(t *testing.T, rep *benchJSON, scenario string) {
	t.Helper()
	if rep.Scenario != scenario {
		t.Errorf("scenario %q, want %q", rep.Scenario, scenario)
	}
	for _, k := range []string{"goos", "goarch", "go_version", "hostname"} {
		if s, _ := rep.Machine[k].(string); s == "" {
			t.Errorf("machine.%s is %v", k, rep.Machine[k])
		}
	}
	if n, _ := rep.Machine["cpus"].(float64); n < 1 {
		t.Errorf("machine.cpus is %v", rep.Machine["cpus"])
	}
	for name, m := range map[string]map[string]float64{"metrics": rep.Metrics, "ratios": rep.Ratios} {
		for k, v := range m {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Errorf("%s.%s is %v", name, k, v)
			}
		}
	}
}

// positive fails unless every named metric is present and above zero.
func positive(t *testing.T, m map[string]float64, names ...string) {
	t.Helper()
	for _, n := range names {
		if v, ok := m[n]; !ok || v <= 0 {
			t.Errorf("%s = %v (present: %v), want > 0", n, v, ok)
		}
	}
}

// equal fails unless the named metric equals want.
func equal(t *testing.T, m map[string]float64, name string, want float64) {
	t.Helper()
	if v, ok := m[name]; !ok || v != want {
		t.Errorf("%s = %v (present: %v), want %v", name, v, ok, want)
	}
}

// databaseGone fails if the scratch database a report names still exists.
func databaseGone(t *testing.T, server string, rep *benchJSON) {
	t.Helper()
	name, _ := rep.Params["database"].(string)
	if !strings.HasPrefix(name, "strata_") {
		t.Fatalf("params.database is %q", name)
	}
	conn, err := pgx.Connect(context.Background(), server)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname=$1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("the bench left its database %s behind", name)
	}
}

// TestBench runs every scenario at a tiny size through the CLI and checks
// that its report is well formed and that its counts add up. It asserts no
// timings.
func TestBench(t *testing.T) {
	server := os.Getenv(testkit.DatabaseURLEnv)
	local := server == ""
	if local {
		server = testkit.DefaultDatabaseURL
	}
	t.Setenv("STRATA_DATABASE_URL", "")
	t.Setenv("STRATA_ADMIN_PASSWORD", "")
	common := []string{"--json", "--quiet", "--partitions", "3"}

	t.Run("E2E", func(t *testing.T) {
		code, rep, stderr := runBench(t, append([]string{"e2e", "--duration", "2s", "--warmup", "300ms",
			"--concurrency", "4", "--accounts", "20", "--database-url", server}, common...)...)
		if code != 0 || rep == nil {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		checkContract(t, rep, "e2e")
		m := rep.Metrics
		positive(t, m, "commands_per_sec", "projected_per_sec", "sent", "accepted", "accept_p50_ms", "accept_p99_ms", "accept_p999_ms",
			"projected", "projected_p50_ms", "projected_p99_ms", "projected_p999_ms", "projected_samples",
			"projected_sampled_p50_ms", "peak_rss_mib", "writes_create_role", "writes_grant_permission", "writes_deposit",
			"relay_delay_p50_ms", "relay_delay_p99_ms")
		if runtime.GOOS == "linux" {
			positive(t, m, "process_cpu_cores", "host_cpu_busy_cores", "host_cpu_ms_per_write")
			if m["host_cpu_busy_cores"] < m["process_cpu_cores"] {
				t.Errorf("host_cpu_busy_cores %v < process_cpu_cores %v", m["host_cpu_busy_cores"], m["process_cpu_cores"])
			}
		}
		// Every write appends at least one event, and the relay observes
		// each event it publishes once; the events of the warm-up were
		// observed before the first scrape.
		if m["relay_delay_events"] < m["accepted"] {
			t.Errorf("relay_delay_events %v < accepted %v", m["relay_delay_events"], m["accepted"])
		}
		for _, k := range []string{"stage_decided_p50_ms", "stage_projected_p50_ms", "pg_xacts_per_write"} {
			if _, ok := m[k]; !ok {
				t.Errorf("metrics lack %s", k)
			}
		}
		equal(t, m, "errors", 0)
		equal(t, m, "unfinished", 0)
		if m["accepted"]+m["errors"] != m["sent"] {
			t.Errorf("accepted %v + errors %v != sent %v", m["accepted"], m["errors"], m["sent"])
		}
		equal(t, m, "projected", m["accepted"])
		if m["writes_create_role"]+m["writes_grant_permission"]+m["writes_deposit"] != m["sent"] {
			t.Errorf("writes by kind do not add up to sent: %v", m)
		}
		if !(m["accept_p50_ms"] <= m["accept_p99_ms"] && m["accept_p99_ms"] <= m["accept_p999_ms"]) {
			t.Errorf("accept percentiles out of order: %v %v %v", m["accept_p50_ms"], m["accept_p99_ms"], m["accept_p999_ms"])
		}
		databaseGone(t, server, rep)
	})
	t.Run("Relay", func(t *testing.T) {
		code, rep, stderr := runBench(t, append([]string{"relay", "--events", "2000", "--database-url", server}, common...)...)
		if code != 0 || rep == nil {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		checkContract(t, rep, "relay")
		positive(t, rep.Metrics, "events_per_sec", "raw_produce_msgs_per_sec")
		positive(t, rep.Ratios, "relay_vs_raw_produce")
		equal(t, rep.Metrics, "published", 2000)
		equal(t, rep.Metrics, "unpublished", 0)
		equal(t, rep.Metrics, "kafka_records", 2000)
		databaseGone(t, server, rep)
	})
	t.Run("Projector", func(t *testing.T) {
		code, rep, stderr := runBench(t, append([]string{"projector", "--events", "2000", "--database-url", server}, common...)...)
		if code != 0 || rep == nil {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		checkContract(t, rep, "projector")
		positive(t, rep.Metrics, "events_per_sec", "total_events_per_sec", "raw_upsert_rows_per_sec")
		positive(t, rep.Ratios, "projector_vs_raw_upsert")
		equal(t, rep.Metrics, "applied", 2000)
		equal(t, rep.Metrics, "commands_projected", 2000)
		databaseGone(t, server, rep)
	})
	t.Run("Baseline", func(t *testing.T) {
		args := []string{"baseline", "--events", "2000"}
		if !local { // otherwise: the dev resolution, as `make bench` runs it
			args = append(args, "--database-url", server)
		}
		code, rep, stderr := runBench(t, append(args, common...)...)
		if code != 0 || rep == nil {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		checkContract(t, rep, "baseline")
		positive(t, rep.Metrics, "kafka_produce_msgs_per_sec", "kafka_consume_msgs_per_sec", "pg_copy_rows_per_sec",
			"pg_upsert_rows_per_sec", "pg_single_commits_per_sec", "pg_single_commits_8conns_per_sec")
		for _, k := range []string{"produced", "consumed", "copied", "upserted"} {
			equal(t, rep.Metrics, k, 2000)
		}
		equal(t, rep.Metrics, "single_commits", 4000)
		databaseGone(t, server, rep)
	})
	t.Run("ReplayIsNotAvailable", func(t *testing.T) {
		code, rep, stderr := runBench(t, "replay", "--json")
		if code != 0 || rep == nil {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		checkContract(t, rep, "replay")
		if rep.Available == nil || *rep.Available {
			t.Errorf("replay says it is available: %+v", rep)
		}
	})
	t.Run("FailsWhenRequestsFail", func(t *testing.T) {
		code, _, stderr := runBench(t, "e2e", "--url", "http://127.0.0.1:1", "--admin-password", "irrelevant-password", "--quiet")
		if code != 1 || !strings.Contains(stderr, "login") {
			t.Errorf("exit %d, want 1 with the failed login: %s", code, stderr)
		}
	})
	t.Run("RefusesUnknownScenario", func(t *testing.T) {
		if code, _, _ := runBench(t, "nope"); code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
	})
}
