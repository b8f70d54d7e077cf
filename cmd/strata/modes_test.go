package main

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/strata-cqrs/strata/commands"
	"github.com/strata-cqrs/strata/internal/config"
	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/testkit"
	"github.com/strata-cqrs/strata/schemas"
)

// TestSplitModes runs `strata migrate`, `strata service auth` and
// `strata gateway` as separate Mains against one broker and database, as a
// deployment would, and drives a write through them.
func TestSplitModes(t *testing.T) {
	cfg := config.Default()
	cfg.DatabaseURL = testkit.Postgres(t)
	cfg.KafkaBrokers = testkit.Kafka(t)
	cfg.CommandKey = hex.EncodeToString(make([]byte, 32))
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Partitions = 2
	cfg.LogLevel = "warn"
	cfg.AdminEmail, cfg.AdminPassword = adminEmail, adminPassword
	for _, mode := range []string{config.ModeMigrate, config.ModeService, config.ModeGateway} {
		if err := cfg.Validate(mode); err != nil {
			t.Fatalf("%s config: %v", mode, err)
		}
	}
	ctx := context.Background()
	m := NewMigrateMain(cfg)
	if err := m.Run(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	_ = m.Close()
	svcCfg := cfg
	svcCfg.OpsAddr = "127.0.0.1:0"
	svc := NewServiceMain(svcCfg, "auth")
	if err := svc.Run(ctx); err != nil {
		t.Fatalf("service: %v", err)
	}
	defer svc.Close()
	gw := NewGatewayMain(cfg)
	if err := gw.Run(ctx); err != nil {
		t.Fatalf("gateway: %v", err)
	}
	defer gw.Close()

	c := &client{t: t, base: gw.URL()}
	c.login(adminEmail, adminPassword)
	r := c.wait("POST", "/roles", `{"name":"Split"}`, 201)
	if r.str("name") != "Split" {
		t.Fatalf("role %s", r.Raw)
	}
	// The service's ops address: health, readiness of its own components,
	// and the relay's histogram, which counted the role's event.
	ops := &client{t: t, base: svc.URL()}
	ops.wait("GET", "/healthz", "", 200)
	ready := ops.wait("GET", "/readyz", "", 200)
	if !strings.Contains(string(ready.Raw), `"auth.relay":"ok"`) {
		t.Errorf("service readiness lacks its relay: %s", ready.Raw)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		res, err := http.Get(svc.URL() + "/metrics")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return regexp.MustCompile(`strata_relay_publish_delay_seconds_count\{service="auth"\} [1-9]`).Match(body)
	}, "the service's /metrics counts the relay's published events")
	if err := NewServiceMain(cfg, "nope").Run(ctx); err == nil {
		t.Fatal("an unknown service started")
	}
}

// TestEmittedEventsMatchSchemas drives every command of every service
// through the platform's HTTP API, then reads every record of the event
// topics of every registered aggregate and validates it against the schema
// its ce_type and ce_dataschema name; and checks that every event type
// with a schema was emitted.
func TestEmittedEventsMatchSchemas(t *testing.T) {
	d := startDev(t, t.TempDir(), testkit.Postgres(t))
	defer d.Close()
	c := admin(t, d)
	driveAuthEvents(t, c)
	driveAccountEvents(t, c)

	// TransferDebitReversed needs a transfer's target account to close
	// between the transfer's request and its credit, which HTTP cannot
	// arrange deterministically; commands/account/transfers_test.go
	// TestRefusedCreditIsCompensated produces it and validates it against
	// its schema.
	unreachable := map[string]bool{"account.TransferDebitReversed.v1": true}

	reg, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, s := range services() {
		for _, def := range s.Aggregates {
			var n int
			if err := d.pool.QueryRow(context.Background(),
				`SELECT count(*) FROM `+s.Name+`.events WHERE aggregate_type=$1`, def.Type).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Errorf("the journal holds no %s event", def.Topic())
			}
			want[def.Topic()] = n
		}
	}
	seen := map[string]bool{}
	for topic, msgs := range readTopics(t, d.KafkaAddr(), want) {
		for _, m := range msgs {
			h := headers(m)
			if err := reg.ValidateEvent(h["ce_type"], m.Value); err != nil {
				t.Errorf("%s %s: %v", topic, h["ce_type"], err)
			}
			if h["ce_dataschema"] != schemas.DataSchemaURI(h["ce_type"]) || string(m.Key) != h["ce_subject"] {
				t.Errorf("%s: dataschema %q, key %q, subject %q", topic, h["ce_dataschema"], m.Key, h["ce_subject"])
			}
			seen[h["ce_type"]] = true
		}
	}
	for _, e := range reg.Events() {
		if !seen[e] && !unreachable[e] {
			t.Errorf("no %s was emitted", e)
		}
	}
	for e := range unreachable {
		if !reg.HasEvent(e) {
			t.Errorf("%s is excused from this test but has no schema", e)
		}
	}
}

// driveAuthEvents emits every auth event through HTTP.
func driveAuthEvents(t *testing.T, c *client) {
	t.Helper()
	p := c.wait("POST", "/permissions", `{"name":"things:read","description":"d"}`, 201).str("id")
	p2 := c.wait("POST", "/permissions", `{"name":"things:write"}`, 201).str("id")
	r := c.wait("POST", "/roles", `{"name":"Schema","description":"d"}`, 201).str("id")
	c.wait("PATCH", "/roles/"+r, `{"name":"Schema2"}`, 200)
	c.wait("POST", "/roles/"+r+"/permissions", `{"permission_id":"`+p+`"}`, 200)
	u := c.wait("POST", "/users", `{"email":"e@example.com","name":"E","password":"a long enough secret"}`, 201).str("id")
	c.wait("POST", "/users/"+u+"/roles", `{"role_id":"`+r+`"}`, 200)
	c.wait("DELETE", "/users/"+u+"/roles/"+r, "", 200)
	c.wait("POST", "/users/"+u+"/password", `{"password":"another long secret"}`, 200)
	c.wait("POST", "/users/"+u+"/disable", "", 200)
	c.wait("POST", "/users/"+u+"/enable", "", 200)
	if l := c.do("POST", "/auth/login", `{"email":"e@example.com","password":"wrong password!"}`); l.Status != 401 {
		t.Fatalf("bad login %d", l.Status)
	}
	c.wait("DELETE", "/roles/"+r+"/permissions/"+p, "", 200)
	c.wait("DELETE", "/roles/"+r, "", 204)
	c.wait("DELETE", "/permissions/"+p2, "", 204)
}

// driveAccountEvents emits every account event but TransferDebitReversed
// through HTTP, as the admin (who may act on every account).
func driveAccountEvents(t *testing.T, c *client) {
	t.Helper()
	me := c.do("GET", "/auth/me", "").str("id")
	open := func(name string) string {
		return c.wait("POST", "/accounts", `{"owner_user_id":"`+me+`","asset":"EUR","name":"`+name+`"}`, 201).str("id")
	}
	a, b, gone := open("A"), open("B"), open("Gone")
	c.wait("POST", "/accounts/"+a+"/deposits", `{"amount":"100.5","reference":"r"}`, 200)
	c.wait("POST", "/accounts/"+a+"/withdrawals", `{"amount":"0.5"}`, 200)
	c.wait("POST", "/accounts/"+a+"/freeze", `{"reason":"check"}`, 200)
	c.wait("POST", "/accounts/"+a+"/unfreeze", "", 200)
	c.wait("POST", "/accounts/"+gone+"/close", "", 200)

	plan := c.wait("POST", "/pay-plans", `{"name":"Schema plan","price":"9.99","currency":"EUR","interval":"yearly","features":["x"]}`, 201).str("id")
	c.wait("POST", "/pay-plans/"+plan+"/price", `{"price":"0"}`, 200)
	c.wait("POST", "/accounts/"+a+"/pay-plan", `{"pay_plan_id":"`+plan+`"}`, 200)
	c.wait("POST", "/pay-plans/"+plan+"/retire", "", 200)

	// A completed transfer: requested, debit, credit, settled, completed.
	transfer := func(from, to, amount string) reply {
		return c.do("POST", "/transfers", `{"from_account_id":"`+from+`","to_account_id":"`+to+`","amount":"`+amount+`"}`, "Prefer", "wait=30")
	}
	if r := transfer(a, b, "10"); r.Status != 201 || r.str("status") != "completed" {
		t.Fatalf("transfer: %d %s", r.Status, r.Raw)
	}
	// A failed one: transfers of the whole balance requested at once are
	// all checked against it, and the debits of all but the first are
	// refused. Repeat the burst in the unlikely case that every later
	// request came after the first debit.
	failed, burst := false, 0
	for ; !failed && burst < 20; burst++ {
		src := open("Burst " + strconv.Itoa(burst))
		c.wait("POST", "/accounts/"+src+"/deposits", `{"amount":"5"}`, 200)
		out := make(chan reply, 8)
		var wg sync.WaitGroup
		for range cap(out) {
			wg.Go(func() { out <- transfer(src, b, "5") })
		}
		wg.Wait()
		close(out)
		for r := range out {
			loc := r.Header.Get("Location")
			switch {
			case r.Status == 422 && r.str("code") == "insufficient_funds" && strings.HasPrefix(loc, "/transfers/"):
				// Requested, then refused at its debit: answered as the
				// refusal, with the failed transfer's Location.
				failed = true
				if got := c.do("GET", loc, ""); got.str("status") != "failed" || got.str("code") != "insufficient_funds" ||
					got.Body["compensated"] != false {
					t.Fatalf("failed transfer %s", got.Raw)
				}
			case r.Status == 201 && r.str("status") == "completed":
			case r.Status == 422 && r.str("code") == "insufficient_funds" && loc == "":
			default:
				t.Fatalf("burst transfer: %d %s", r.Status, r.Raw)
			}
		}
	}
	if !failed {
		t.Fatal("20 bursts of transfers of a whole balance made no failed transfer")
	}
	t.Logf("a transfer failed at its debit in burst %d", burst)

	tpl := c.wait("POST", "/message-templates", `{"name":"Schema","channel":"email","subject":"Hi {{name}}","body":"Hello {{name}}"}`, 201).str("id")
	c.wait("PUT", "/message-templates/"+tpl, `{"name":"Schema","subject":"Hi {{ name }}","body":"Hello, {{name}}"}`, 200)
	group := c.wait("POST", "/message-groups", `{"name":"Schema","description":"d"}`, 201).str("id")
	c.wait("POST", "/message-groups/"+group+"/members", `{"user_id":"`+me+`"}`, 200)
	c.wait("POST", "/message-groups/"+group+"/messages", `{"template_id":"`+tpl+`","variables":{"name":"Ada"}}`, 200)
	c.wait("DELETE", "/message-groups/"+group+"/members/"+me, "", 200)
	c.wait("DELETE", "/message-templates/"+tpl, "", 204)
}

func headers(m kafkago.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

// readTopic reads the want records of topic from the start, and fails if
// the topic holds fewer or, within a quiet second after them, more.
func readTopic(t *testing.T, addr, topic string, want int) []kafkago.Message {
	t.Helper()
	return readTopics(t, addr, map[string]int{topic: want})[topic]
}

// readTopics reads want[topic] records of every topic from the start, by
// topic, and fails if a topic holds fewer or, within a quiet second after
// them all, more.
func readTopics(t *testing.T, addr string, want map[string]int) map[string][]kafkago.Message {
	t.Helper()
	topics, total := make([]string, 0, len(want)), 0
	for topic, n := range want {
		topics, total = append(topics, topic), total+n
	}
	r := kafka.NewReader(kafka.ReaderOptions{Brokers: []string{addr}, GroupID: "read-" + commands.NewID(), Topics: topics})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := map[string][]kafkago.Message{}
	for read := 0; read < total; read++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("%v: read %d of %d records: %v", topics, read, total, err)
		}
		out[m.Topic] = append(out[m.Topic], m)
	}
	quiet, cancelQuiet := context.WithTimeout(ctx, time.Second)
	defer cancelQuiet()
	if m, err := r.FetchMessage(quiet); err == nil {
		t.Fatalf("%s holds more than %d records: extra at offset %d", m.Topic, want[m.Topic], m.Offset)
	}
	for topic, n := range want {
		if len(out[topic]) != n {
			t.Fatalf("%s: read %d records, the journal holds %d", topic, len(out[topic]), n)
		}
	}
	return out
}

// TestGCSettings: the all-in-one process collects only near its own soft
// limit, unless GOGC or GOMEMLIMIT are set; a GOMEMLIMIT alone never leaves
// the collector off.
func TestGCSettings(t *testing.T) {
	for _, c := range []struct {
		env     map[string]string
		percent int
		limit   int64
	}{
		{env: nil, percent: -1, limit: memoryLimit},
		{env: map[string]string{"GOGC": "100"}, percent: 0, limit: memoryLimit},
		{env: map[string]string{"GOMEMLIMIT": "1GiB"}, percent: 200, limit: 0},
		{env: map[string]string{"GOGC": "off", "GOMEMLIMIT": "1GiB"}, percent: 0, limit: 0},
	} {
		percent, limit := gcSettings(func(k string) string { return c.env[k] })
		if percent != c.percent || limit != c.limit {
			t.Errorf("env %v: GOGC %d, limit %d; want %d, %d", c.env, percent, limit, c.percent, c.limit)
		}
	}
}
