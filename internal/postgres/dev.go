package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Sources a Resolved database can come from.
const (
	// SourceEnv means the URL was given explicitly (DevOptions.URL).
	SourceEnv = "env"
	// SourceLocal means a database dedicated to the data dir on the server
	// already running at DevOptions.LocalAddr.
	SourceLocal = "local"
	// SourcePrivate means a private cluster this process started from the
	// local PostgreSQL binaries.
	SourcePrivate = "private"
)

// DefaultLocalAddr is where ResolveDev looks for a running local server.
const DefaultLocalAddr = "127.0.0.1:5432"

// Files ResolveDev keeps in DevOptions.DataDir.
const (
	// DatabaseFile holds the name of the database ResolveDev created on the
	// local server for this data dir.
	DatabaseFile = "pg-database"
	// LocationFile holds the absolute path of the private cluster when it
	// could not live under the data dir.
	LocationFile = "pg-location"
)

// localProbeTimeout bounds the attempt to reach the local server.
const localProbeTimeout = time.Second

// DevOptions configures ResolveDev. The zero value is not valid: either URL
// or DataDir must be set.
type DevOptions struct {
	// URL, when set, is used as is (Source "env").
	URL string
	// DataDir holds the state ResolveDev keeps between runs (the local
	// database's name, the private cluster). Required unless URL is set.
	DataDir string
	// Logger receives progress messages. Default: discard.
	Logger *slog.Logger
	// LocalAddr is the host:port probed for a running server as user
	// postgres. Default DefaultLocalAddr. Tests point it at a closed port to
	// force the private cluster.
	LocalAddr string
}

// withDefaults returns o with every unset field defaulted.
func (o DevOptions) withDefaults() DevOptions {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LocalAddr == "" {
		o.LocalAddr = DefaultLocalAddr
	}
	return o
}

// Validate reports every problem with o (after defaults are applied): DataDir
// is required unless URL is set, and LocalAddr must be host:port.
func (o DevOptions) Validate() error {
	o = o.withDefaults()
	var errs []error
	if o.URL == "" && o.DataDir == "" {
		errs = append(errs, errors.New("DataDir is required when URL is empty"))
	}
	if _, _, err := net.SplitHostPort(o.LocalAddr); err != nil {
		errs = append(errs, fmt.Errorf("LocalAddr %q: %w", o.LocalAddr, err))
	}
	return errors.Join(errs...)
}

// Resolved is the database ResolveDev chose. URL is ready for Connect.
type Resolved struct {
	// URL of the database to use.
	URL string
	// Source is SourceEnv, SourceLocal or SourcePrivate.
	Source string

	stop     func() error
	stopOnce sync.Once
	stopErr  error
}

// Close stops the private cluster if ResolveDev started one (pg_ctl stop -m
// fast, waiting until it is down); for other sources it does nothing. It is
// safe to call more than once and returns the first result every time.
func (r *Resolved) Close() error {
	if r == nil {
		return nil
	}
	r.stopOnce.Do(func() {
		if r.stop != nil {
			r.stopErr = r.stop()
		}
	})
	return r.stopErr
}

// ResolveDev finds a Postgres database for development, in this order:
//
//  1. o.URL if set (Source "env"); nothing is checked or created.
//  2. The server at o.LocalAddr, if it accepts user postgres within about a
//     second (Source "local"): a database dedicated to o.DataDir, named
//     strata_<8 hex>, created on first use and recorded in
//     <DataDir>/pg-database. Later calls reuse it, creating it again if it
//     was dropped.
//  3. Otherwise a private cluster (Source "private") under <DataDir>/pg,
//     initialised once from the newest local PostgreSQL binaries, started on
//     a free 127.0.0.1 port and holding a database named strata. When the
//     process is root the cluster runs as the postgres user; if that user
//     cannot traverse the data dir's parents the cluster lives under the
//     system temp dir instead and <DataDir>/pg-location records where. If the
//     cluster is already running it is reused. Resolved.Close stops it.
//
// The returned URL has been checked to accept connections (except for
// Source "env").
func ResolveDev(ctx context.Context, o DevOptions) (*Resolved, error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("postgres: dev options: %w", err)
	}
	if o.URL != "" {
		o.Logger.Info("postgres: using the configured database URL", "source", SourceEnv)
		return &Resolved{URL: o.URL, Source: SourceEnv}, nil
	}
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("postgres: data dir: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("postgres: create data dir: %w", err)
	}

	conn, probeErr := probeLocal(ctx, o.LocalAddr)
	if probeErr == nil {
		defer conn.Close(context.WithoutCancel(ctx))
		name, err := localDatabase(ctx, conn, dataDir, o.Logger)
		if err != nil {
			return nil, fmt.Errorf("postgres: local server at %s: %w", o.LocalAddr, err)
		}
		url := fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", o.LocalAddr, name)
		o.Logger.Info("postgres: using the local server", "source", SourceLocal, "addr", o.LocalAddr, "database", name)
		return &Resolved{URL: url, Source: SourceLocal}, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("postgres: resolve dev database: %w", ctx.Err())
	}
	o.Logger.Info("postgres: no usable local server, starting a private cluster",
		"addr", o.LocalAddr, "reason", probeErr.Error())
	r, err := startPrivate(ctx, dataDir, o.Logger)
	if err != nil {
		return nil, fmt.Errorf("postgres: private cluster (no usable server at %s: %v): %w", o.LocalAddr, probeErr, err)
	}
	return r, nil
}

// probeLocal connects to the postgres database at addr as user postgres,
// giving up after localProbeTimeout.
func probeLocal(ctx context.Context, addr string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", addr))
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = localProbeTimeout
	pctx, cancel := context.WithTimeout(ctx, localProbeTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(pctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := conn.Ping(pctx); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return conn, nil
}

// dbNamePattern is what ResolveDev accepts as a recorded database name.
var dbNamePattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,63}$`)

// localDatabase returns the database dedicated to dataDir on conn's server,
// creating it (and recording its name) as needed.
func localDatabase(ctx context.Context, conn *pgx.Conn, dataDir string, log *slog.Logger) (string, error) {
	file := filepath.Join(dataDir, DatabaseFile)
	name, err := readTrimmed(file)
	if err != nil {
		return "", err
	}
	fresh := name == ""
	if fresh {
		b := make([]byte, 4)
		_, _ = rand.Read(b) // crypto/rand.Read never fails
		name = "strata_" + hex.EncodeToString(b)
	} else if !dbNamePattern.MatchString(name) {
		return "", fmt.Errorf("%s holds %q, which is not a database name this tool creates; remove the file to start afresh", file, name)
	}
	if err := ensureDatabase(ctx, conn, name); err != nil {
		return "", err
	}
	if fresh {
		if err := writeFileAtomic(file, name+"\n"); err != nil {
			return "", err
		}
		log.Info("postgres: created a database for this data dir", "database", name, "recorded_in", file)
	}
	return name, nil
}

// ensureDatabase creates database name unless it exists.
func ensureDatabase(ctx context.Context, conn *pgx.Conn, name string) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created concurrently
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// readTrimmed returns the trimmed content of file, or "" if it does not exist.
func readTrimmed(file string) (string, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// writeFileAtomic replaces file with content, so readers see the old or the
// new content, never a torn one.
func writeFileAtomic(file, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
