package main

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

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
	svc := NewServiceMain(cfg, "auth")
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
	if err := NewServiceMain(cfg, "nope").Run(ctx); err == nil {
		t.Fatal("an unknown service started")
	}
}

// TestEmittedEventsMatchSchemas drives every auth command through the
// platform, then reads every record of the event topics and validates it
// against the schema its ce_type and ce_dataschema name.
func TestEmittedEventsMatchSchemas(t *testing.T) {
	d := startDev(t, t.TempDir(), testkit.Postgres(t))
	defer d.Close()
	c := admin(t, d)
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

	reg, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, typ := range []string{"permission", "role", "user", "login"} {
		var want int
		if err := d.pool.QueryRow(context.Background(), `SELECT count(*) FROM auth.events WHERE aggregate_type=$1`, typ).Scan(&want); err != nil {
			t.Fatal(err)
		}
		for _, m := range readTopic(t, d.KafkaAddr(), "auth."+typ, want) {
			h := headers(m)
			if err := reg.ValidateEvent(h["ce_type"], m.Value); err != nil {
				t.Errorf("%s %s: %v", typ, h["ce_type"], err)
			}
			if h["ce_dataschema"] != schemas.DataSchemaURI(h["ce_type"]) || string(m.Key) != h["ce_subject"] {
				t.Errorf("%s: dataschema %q, key %q, subject %q", typ, h["ce_dataschema"], m.Key, h["ce_subject"])
			}
			seen[h["ce_type"]] = true
		}
	}
	for _, e := range reg.Events() {
		if !seen[e] {
			t.Errorf("no %s was emitted", e)
		}
	}
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
	r := kafka.NewReader(kafka.ReaderOptions{Brokers: []string{addr}, GroupID: "read-" + topic + time.Now().String(), Topics: []string{topic}})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []kafkago.Message
	for len(out) < want {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("%s: read %d of %d: %v", topic, len(out), want, err)
		}
		out = append(out, m)
	}
	quiet, cancelQuiet := context.WithTimeout(ctx, time.Second)
	defer cancelQuiet()
	if m, err := r.FetchMessage(quiet); err == nil {
		t.Fatalf("%s holds more than %d records: extra at offset %d", topic, want, m.Offset)
	}
	return out
}
