package config

import (
	"flag"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnvOverridesDefaults(t *testing.T) {
	c, err := FromEnv(env(map[string]string{
		"STRATA_DATABASE_URL":     "postgres://db/x",
		"STRATA_KAFKA_BROKERS":    " k1:9092, ,k2:9092 ",
		"STRATA_TOPIC_PARTITIONS": "12",
		"STRATA_ADMIN_PASSWORD":   "  spaces kept  ",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "postgres://db/x" || c.Partitions != 12 || c.HTTPAddr != "127.0.0.1:8080" {
		t.Fatalf("config %+v", c)
	}
	if got := strings.Join(c.KafkaBrokers, "|"); got != "k1:9092|k2:9092" {
		t.Fatalf("brokers %q", got)
	}
	if c.AdminPassword != "  spaces kept  " {
		t.Fatalf("the admin password was altered: %q", c.AdminPassword)
	}
	if _, err := FromEnv(env(map[string]string{"STRATA_TOPIC_PARTITIONS": "six"})); err == nil {
		t.Fatal("a non-numeric partition count was accepted")
	}
}

func TestFlagsOverrideEnv(t *testing.T) {
	c, _ := FromEnv(env(map[string]string{"STRATA_HTTP_ADDR": ":1"}))
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	c.Bind(fs, ModeDev)
	if err := fs.Parse([]string{"--http-addr", ":2", "--data-dir", "/tmp/x"}); err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":2" || c.DataDir != "/tmp/x" {
		t.Fatalf("flags did not win: %+v", c)
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	c := Default()
	c.LogLevel, c.Partitions, c.AdminPassword = "loud", 0, "short"
	err := c.Validate(ModeGateway)
	if err == nil {
		t.Fatal("an invalid config passed")
	}
	for _, want := range []string{"log level", "partitions", "STRATA_ADMIN_PASSWORD", "STRATA_DATABASE_URL", "STRATA_KAFKA_BROKERS", "STRATA_COMMAND_KEY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if d := Default(); d.Validate(ModeDev) != nil {
		err := d.Validate(ModeDev)
		t.Fatalf("the dev defaults are invalid: %v", err)
	}
}
