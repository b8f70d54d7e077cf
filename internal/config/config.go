// Package config holds the settings of every strata mode: defaults, the
// STRATA_* environment variables, flags that override them, and Validate.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
)

// Config is every setting of the binary. Which ones a mode uses is decided
// by Validate's mode argument.
type Config struct {
	DatabaseURL       string   // STRATA_DATABASE_URL
	KafkaBrokers      []string // STRATA_KAFKA_BROKERS, comma-separated
	HTTPAddr          string   // STRATA_HTTP_ADDR
	OpsAddr           string   // STRATA_OPS_ADDR (service): /healthz, /readyz, /metrics; empty: none
	CommandKey        string   // STRATA_COMMAND_KEY, hex, ≥ 32 bytes
	LogLevel          string   // STRATA_LOG_LEVEL
	DataDir           string   // STRATA_DATA_DIR (dev)
	KafkaAddr         string   // STRATA_KAFKA_ADDR (dev)
	Partitions        int      // STRATA_TOPIC_PARTITIONS
	ReplicationFactor int      // STRATA_TOPIC_REPLICATION_FACTOR
	MinISR            int      // STRATA_TOPIC_MIN_ISR
	AdminEmail        string   // STRATA_ADMIN_EMAIL
	AdminPassword     string   // STRATA_ADMIN_PASSWORD
}

// Default returns the defaults.
func Default() Config {
	return Config{
		HTTPAddr:          "127.0.0.1:8080",
		LogLevel:          "info",
		DataDir:           ".strata",
		KafkaAddr:         "127.0.0.1:9092",
		Partitions:        6,
		ReplicationFactor: 1,
		MinISR:            1,
		AdminEmail:        "admin@strata.local",
	}
}

// FromEnv returns the defaults overridden by the STRATA_* variables that
// getenv returns non-empty.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Default()
	str := func(name string, dst *string) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			*dst = v
		}
	}
	var errs []error
	num := func(name string, dst *int) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a number", name, v))
			}
			*dst = n
		}
	}
	str("STRATA_DATABASE_URL", &c.DatabaseURL)
	str("STRATA_HTTP_ADDR", &c.HTTPAddr)
	str("STRATA_OPS_ADDR", &c.OpsAddr)
	str("STRATA_COMMAND_KEY", &c.CommandKey)
	str("STRATA_LOG_LEVEL", &c.LogLevel)
	str("STRATA_DATA_DIR", &c.DataDir)
	str("STRATA_KAFKA_ADDR", &c.KafkaAddr)
	str("STRATA_ADMIN_EMAIL", &c.AdminEmail)
	c.AdminPassword = getenv("STRATA_ADMIN_PASSWORD")
	if v := getenv("STRATA_KAFKA_BROKERS"); v != "" {
		c.KafkaBrokers = SplitList(v)
	}
	num("STRATA_TOPIC_PARTITIONS", &c.Partitions)
	num("STRATA_TOPIC_REPLICATION_FACTOR", &c.ReplicationFactor)
	num("STRATA_TOPIC_MIN_ISR", &c.MinISR)
	return c, errors.Join(errs...)
}

// SplitList splits a comma-separated list, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Modes, for Bind and Validate.
const (
	ModeDev     = "dev"
	ModeGateway = "gateway"
	ModeService = "service"
	ModeMigrate = "migrate"
	ModeAdmin   = "admin"
)

// Bind registers the flags of a mode on fs, defaulting to c's values.
func (c *Config) Bind(fs *flag.FlagSet, mode string) {
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "Postgres URL (STRATA_DATABASE_URL)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (STRATA_LOG_LEVEL)")
	if mode == ModeMigrate || mode == ModeAdmin {
		return
	}
	if mode == ModeDev || mode == ModeGateway {
		fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "HTTP listen address (STRATA_HTTP_ADDR)")
	}
	if mode == ModeService {
		fs.StringVar(&c.OpsAddr, "ops-addr", c.OpsAddr,
			"listen address of /healthz, /readyz and /metrics; empty: none (STRATA_OPS_ADDR)")
	}
	if mode == ModeDev {
		fs.StringVar(&c.KafkaAddr, "kafka-addr", c.KafkaAddr, "address of the embedded Kafka broker (STRATA_KAFKA_ADDR)")
		fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for Kafka data, keys and a private Postgres (STRATA_DATA_DIR)")
	} else {
		fs.Func("kafka-brokers", "comma-separated Kafka brokers (STRATA_KAFKA_BROKERS)", func(s string) error {
			c.KafkaBrokers = SplitList(s)
			return nil
		})
	}
	fs.IntVar(&c.Partitions, "partitions", c.Partitions, "partitions of topics strata creates (STRATA_TOPIC_PARTITIONS)")
}

// Validate checks the settings a mode needs.
func (c *Config) Validate(mode string) error {
	var errs []error
	if _, err := c.Level(); err != nil {
		errs = append(errs, err)
	}
	if c.Partitions < 1 {
		errs = append(errs, errors.New("partitions must be at least 1"))
	}
	if c.ReplicationFactor < 1 || c.MinISR < 1 || c.MinISR > c.ReplicationFactor {
		errs = append(errs, errors.New("need 1 <= STRATA_TOPIC_MIN_ISR <= STRATA_TOPIC_REPLICATION_FACTOR"))
	}
	if p := c.AdminPassword; p != "" && (len([]rune(p)) < 12 || len([]rune(p)) > 128) {
		errs = append(errs, errors.New("STRATA_ADMIN_PASSWORD must be 12-128 characters"))
	}
	switch mode {
	case ModeDev:
		if c.DataDir == "" || c.KafkaAddr == "" || c.HTTPAddr == "" {
			errs = append(errs, errors.New("dev needs --data-dir, --kafka-addr and --http-addr"))
		}
	case ModeMigrate, ModeAdmin:
		if c.DatabaseURL == "" {
			errs = append(errs, errors.New("STRATA_DATABASE_URL is required"))
		}
	default:
		if c.DatabaseURL == "" {
			errs = append(errs, errors.New("STRATA_DATABASE_URL is required"))
		}
		if len(c.KafkaBrokers) == 0 {
			errs = append(errs, errors.New("STRATA_KAFKA_BROKERS is required"))
		}
		if c.CommandKey == "" {
			errs = append(errs, errors.New("STRATA_COMMAND_KEY is required (hex, at least 32 bytes: openssl rand -hex 32)"))
		}
	}
	return errors.Join(errs...)
}

// Level parses LogLevel.
func (c *Config) Level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return l, fmt.Errorf("log level %q: use debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}

// Logger returns a text logger on stderr at the configured level.
func (c *Config) Logger() *slog.Logger {
	l, _ := c.Level()
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
