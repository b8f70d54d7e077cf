package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/strata-cqrs/strata/internal/config"
	"github.com/strata-cqrs/strata/internal/testkit"
)

// startDev runs `strata dev`'s Main on :0 ports with a data dir and
// database of the test's own.
func startDev(t testing.TB, dataDir, dbURL string) *Dev {
	t.Helper()
	cfg := config.Default()
	cfg.HTTPAddr, cfg.KafkaAddr, cfg.DataDir, cfg.DatabaseURL = "127.0.0.1:0", "127.0.0.1:0", dataDir, dbURL
	cfg.Partitions = 3
	cfg.LogLevel = "warn"
	cfg.AdminEmail, cfg.AdminPassword = adminEmail, adminPassword
	d := NewDev(cfg, io.Discard)
	if err := d.Run(context.Background()); err != nil {
		_ = d.Close()
		t.Fatalf("dev: %v", err)
	}
	return d
}

// The bootstrap admin of every test platform.
const (
	adminEmail    = "admin@example.com"
	adminPassword = "correct horse battery staple"
)

// client drives the HTTP API of one running platform, with a bearer token
// once logged in.
type client struct {
	t     testing.TB
	base  string
	token string
}

// login signs in and keeps the access token; it returns the token pair.
func (c *client) login(email, password string) reply {
	c.t.Helper()
	r := c.do("POST", "/auth/login", `{"email":"`+email+`","password":"`+password+`"}`)
	if r.Status != 200 {
		c.t.Fatalf("login %s: %d %s", email, r.Status, r.Raw)
	}
	c.token = r.str("access_token")
	return r
}

// admin returns a client of d logged in as the bootstrap admin.
func admin(t testing.TB, d *Dev) *client {
	t.Helper()
	c := &client{t: t, base: d.URL()}
	c.login(adminEmail, adminPassword)
	return c
}

type reply struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

func (c *client) do(method, path, body string, headers ...string) reply {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := reply{Status: res.StatusCode, Header: res.Header, Raw: raw}
	if len(bytes.TrimSpace(raw)) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			c.t.Fatalf("%s %s: bad JSON %q", method, path, raw)
		}
	}
	return r
}

// wait sends a write with Prefer: wait and expects status.
func (c *client) wait(method, path, body string, want int, headers ...string) reply {
	c.t.Helper()
	r := c.do(method, path, body, append([]string{"Prefer", "wait=10"}, headers...)...)
	if r.Status != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Raw)
	}
	return r
}

func (r reply) str(key string) string { s, _ := r.Body[key].(string); return s }

func expectCode(t *testing.T, r reply, status int, code string) {
	t.Helper()
	if r.Status != status || r.str("code") != code {
		t.Fatalf("got %d %q, want %d %q: %s", r.Status, r.str("code"), status, code, r.Raw)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("problem content type %q", ct)
	}
}

func TestDevEndToEnd(t *testing.T) {
	dir, db := t.TempDir(), testkit.Postgres(t)
	d := startDev(t, dir, db)
	c := admin(t, d)

	testkit.Eventually(t, 20e9, func() bool { return c.do("GET", "/readyz", "").Status == 200 }, "never ready")

	var roleID, permID string
	t.Run("CreatesWithWait", func(t *testing.T) {
		r := c.wait("POST", "/permissions", `{"name":"reports:read","description":"read reports"}`, 201)
		permID = r.str("id")
		if r.str("name") != "reports:read" || r.Body["version"] != 1.0 || r.Header.Get("ETag") != `"1"` {
			t.Fatalf("permission %s", r.Raw)
		}
		r = c.wait("POST", "/roles", `{"name":"Operators","description":"ops"}`, 201)
		roleID = r.str("id")
		if r.Header.Get("Location") != "/roles/"+roleID || r.Header.Get("Preference-Applied") != "wait=10" {
			t.Fatalf("headers %v", r.Header)
		}
	})
	t.Run("AcceptsAsync", func(t *testing.T) {
		r := c.do("POST", "/roles", `{"name":"Async"}`)
		if r.Status != 202 || r.str("status") != "pending" || r.Header.Get("Location") != r.str("status_url") {
			t.Fatalf("202 %d %s", r.Status, r.Raw)
		}
		st := c.do("GET", r.str("status_url")+"?wait=10", "")
		if st.str("status") != "projected" || st.str("aggregate_id") != r.str("aggregate_id") || st.Body["version"] != 1.0 {
			t.Fatalf("status %s", st.Raw)
		}
		for _, k := range []string{"id", "type", "code", "reason", "submitted_at", "decided_at", "projected_at"} {
			if _, ok := st.Body[k]; !ok {
				t.Fatalf("status lacks %q: %s", k, st.Raw)
			}
		}
	})
	t.Run("GrantsAndRejects", func(t *testing.T) {
		r := c.wait("POST", "/roles/"+roleID+"/permissions", `{"permission_id":"`+permID+`"}`, 200)
		perms, _ := r.Body["permissions"].([]any)
		if len(perms) != 1 || r.Body["version"] != 2.0 {
			t.Fatalf("grant %s", r.Raw)
		}
		expectCode(t, c.wait("POST", "/roles/"+roleID+"/permissions", `{"permission_id":"`+permID+`"}`, 409), 409, "already_granted")
		expectCode(t, c.wait("POST", "/roles/"+roleID+"/permissions", `{"permission_id":"01a2297c-52ef-750b-9b53-749a13df5dd9"}`, 422), 422, "permission_not_found")
		expectCode(t, c.wait("POST", "/roles", `{"name":"OPERATORS"}`, 409), 409, "role_exists")
		expectCode(t, c.wait("POST", "/permissions", `{"name":"reports:read"}`, 409), 409, "permission_exists")
	})
	t.Run("ChecksVersions", func(t *testing.T) {
		expectCode(t, c.wait("PATCH", "/roles/"+roleID, `{"name":"Ops"}`, 412, "If-Match", `"1"`), 412, "version_conflict")
		r := c.wait("PATCH", "/roles/"+roleID, `{"name":"Ops"}`, 200, "If-Match", `"2"`)
		if r.str("name") != "Ops" || r.Header.Get("ETag") != `"3"` {
			t.Fatalf("rename %s", r.Raw)
		}
		if g := c.do("GET", "/roles/"+roleID, ""); g.Header.Get("ETag") != `"3"` {
			t.Fatalf("etag %v", g.Header)
		}
	})
	t.Run("RejectsBadInput", func(t *testing.T) {
		expectCode(t, c.do("POST", "/roles", `{"name":"x","id":"1"}`), 400, "validation_failed")
		expectCode(t, c.do("POST", "/roles", `{"name":`), 400, "malformed_json")
		expectCode(t, c.do("POST", "/roles", `{"name":"x"}`, "Content-Type", "text/plain"), 415, "unsupported_media_type")
		expectCode(t, c.do("POST", "/roles", `{"name":"`+strings.Repeat("a", 1<<20)+`"}`), 413, "body_too_large")
		expectCode(t, c.do("POST", "/permissions", `{"name":"NotAPermission"}`), 400, "validation_failed")
		expectCode(t, c.do("GET", "/roles?limit=abc", ""), 400, "invalid_query")
		expectCode(t, c.do("GET", "/roles/not-a-uuid", ""), 404, "not_found")
	})
	t.Run("ServesOpenAPIWithResolvableRefs", func(t *testing.T) {
		doc := c.do("GET", "/openapi.yaml", "")
		if doc.Status != 200 || !strings.Contains(string(doc.Raw), "$ref: '/schemas/commands/auth/CreateRole.json'") {
			t.Fatalf("openapi %d", doc.Status)
		}
		if s := c.do("GET", "/schemas/commands/auth/CreateRole.json", ""); s.Status != 200 || s.str("$id") == "" {
			t.Fatalf("schema %d %s", s.Status, s.Raw)
		}
	})
	t.Run("IdempotencyKey", func(t *testing.T) {
		a := c.do("POST", "/roles", `{"name":"Idem"}`, "Idempotency-Key", "k-1")
		b := c.do("POST", "/roles", `{"name":"Idem"}`, "Idempotency-Key", "k-1")
		if a.Status != 202 || b.str("command_id") != a.str("command_id") {
			t.Fatalf("retry gave another command: %s / %s", a.Raw, b.Raw)
		}
		expectCode(t, c.do("POST", "/roles", `{"name":"Other"}`, "Idempotency-Key", "k-1"), 422, "idempotency_key_reused")
	})
	t.Run("Paginates", func(t *testing.T) {
		for _, n := range []string{"P1", "P2", "P3"} {
			c.wait("POST", "/roles", `{"name":"`+n+`"}`, 201)
		}
		seen := map[string]bool{}
		path := "/roles?limit=2"
		for pages := 0; path != ""; pages++ {
			r := c.do("GET", path, "")
			items, _ := r.Body["items"].([]any)
			if len(items) > 2 || pages > 10 {
				t.Fatalf("page %s", r.Raw)
			}
			for _, it := range items {
				seen[it.(map[string]any)["id"].(string)] = true
			}
			path = ""
			if next, ok := r.Body["next_cursor"].(string); ok {
				path = "/roles?limit=2&cursor=" + next
			}
		}
		if len(seen) < 5 {
			t.Fatalf("pagination saw %d roles", len(seen))
		}
	})
	t.Run("Deletes", func(t *testing.T) {
		r := c.wait("POST", "/roles", `{"name":"Doomed"}`, 201)
		c.wait("DELETE", "/roles/"+r.str("id"), "", 204)
		expectCode(t, c.do("GET", "/roles/"+r.str("id"), ""), 404, "not_found")
		expectCode(t, c.wait("DELETE", "/roles/"+r.str("id"), "", 409), 409, "aggregate_deleted")
		c.wait("POST", "/roles", `{"name":"Doomed"}`, 201) // the name is free again
	})

	t.Run("PlatformReachesItsBrokerInMemory", func(t *testing.T) {
		m := c.do("GET", "/metrics", "")
		tcp := regexp.MustCompile(`strata_embedded_kafka_connections_total\{transport="tcp"\} (\d+)`).FindSubmatch(m.Raw)
		mem := regexp.MustCompile(`strata_embedded_kafka_connections_total\{transport="memory"\} (\d+)`).FindSubmatch(m.Raw)
		if tcp == nil || mem == nil || string(tcp[1]) != "0" || string(mem[1]) == "0" {
			t.Fatalf("the embedded broker's connections: tcp %q, memory %q; want none over TCP from the platform itself", tcp, mem)
		}
	})

	// Restart on the same data dir: everything is kept and versions continue.
	if err := d.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	d = startDev(t, dir, db)
	defer d.Close()
	c = admin(t, d)
	testkit.Eventually(t, 20e9, func() bool { return c.do("GET", "/readyz", "").Status == 200 }, "never ready after restart")
	t.Run("KeepsStateAcrossRestart", func(t *testing.T) {
		r := c.do("GET", "/roles/"+roleID, "")
		if r.Status != 200 || r.str("name") != "Ops" || r.Body["version"] != 3.0 {
			t.Fatalf("after restart %s", r.Raw)
		}
		r = c.wait("POST", "/roles/"+roleID+"/permissions/"+permID, "", 405)
		r = c.wait("DELETE", "/roles/"+roleID+"/permissions/"+permID, "", 200)
		if r.Body["version"] != 4.0 {
			t.Fatalf("version did not continue: %s", r.Raw)
		}
		expectCode(t, c.wait("POST", "/roles", `{"name":"ops"}`, 409), 409, "role_exists")
	})
}

// TestDevKeepsKafkaHistoryAcrossRestart checks that the embedded broker's
// data dir keeps every event: after a restart a new consumer reads from
// offset 0 exactly as many role events as the journal holds.
func TestDevKeepsKafkaHistoryAcrossRestart(t *testing.T) {
	dir, db := t.TempDir(), testkit.Postgres(t)
	d := startDev(t, dir, db)
	c := admin(t, d)
	for _, n := range []string{"K1", "K2", "K3"} {
		r := c.wait("POST", "/roles", `{"name":"`+n+`"}`, 201)
		c.wait("PATCH", "/roles/"+r.str("id"), `{"name":"`+n+`-renamed"}`, 200)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = startDev(t, dir, db)
	defer d.Close()
	var want int
	if err := d.pool.QueryRow(context.Background(), `SELECT count(*) FROM auth.events WHERE aggregate_type='role'`).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if want < 6 {
		t.Fatalf("the journal holds %d role events", want)
	}
	readTopic(t, d.KafkaAddr(), "auth.role", want)
}

func TestDevStreamsCommandStatus(t *testing.T) {
	d := startDev(t, t.TempDir(), testkit.Postgres(t))
	defer d.Close()
	c := admin(t, d)
	r := c.do("POST", "/roles", `{"name":"Streamed"}`)
	req, _ := http.NewRequest("GET", d.URL()+r.str("status_url")+"/stream", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	body, _ := io.ReadAll(res.Body) // the server closes after a terminal status
	if !strings.Contains(string(body), `"status":"projected"`) || !strings.HasPrefix(string(body), "event: status\ndata: {") {
		t.Fatalf("stream %q", body)
	}
}
