package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-cqrs/strata/internal/postgres"
)

// Database is the scratch database a scenario runs on. Close removes what
// OpenDatabase created, and nothing else.
type Database struct {
	// URL of the scratch database, ready for postgres.Connect.
	URL string
	// Source says where it lives: "server" (created on the server of the
	// URL given), "local" (created on the local server by the dev
	// resolution) or "private" (a private cluster under the data dir).
	Source string
	// Name of the database.
	Name string

	drop func(ctx context.Context) error
}

// OpenDatabase returns a fresh database for one scenario:
//   - with serverURL (a postgres:// URL): a database strata_bench_<hex>
//     created on that URL's server, connecting as its user, who needs
//     CREATEDB. The database the URL names is used only to connect.
//   - without: the dev resolution of `strata dev` (postgres.ResolveDev) on
//     dataDir, which creates strata_<hex> on the local server at
//     127.0.0.1:5432 or starts a private cluster under dataDir.
//
// Close drops the database it created (WITH (FORCE)) or stops the private
// cluster; the caller removes dataDir.
func OpenDatabase(ctx context.Context, serverURL, dataDir string, log *slog.Logger) (*Database, error) {
	if serverURL != "" {
		return createOn(ctx, serverURL)
	}
	res, err := postgres.ResolveDev(ctx, postgres.DevOptions{DataDir: dataDir, Logger: log})
	if err != nil {
		return nil, err
	}
	db := &Database{URL: res.URL, Source: res.Source}
	switch res.Source {
	case postgres.SourceLocal:
		b, err := os.ReadFile(filepath.Join(dataDir, postgres.DatabaseFile))
		if err != nil {
			return nil, fmt.Errorf("bench: the dev resolution created a database but did not record it: %w", err)
		}
		db.Name = strings.TrimSpace(string(b))
		admin := fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", postgres.DefaultLocalAddr)
		db.drop = func(ctx context.Context) error { return dropDatabase(ctx, admin, db.Name) }
	case postgres.SourcePrivate:
		db.Name = "strata"
		loc, _ := os.ReadFile(filepath.Join(dataDir, postgres.LocationFile))
		db.drop = func(context.Context) error {
			err := res.Close()
			// A cluster that could not live under dataDir lives where
			// this file says; it is ours alone, so it goes too.
			if p := strings.TrimSpace(string(loc)); p != "" && filepath.IsAbs(p) {
				err = errors.Join(err, os.RemoveAll(p))
			}
			return err
		}
	}
	return db, nil
}

// Close drops the database (or stops the private cluster). It is safe to
// call more than once.
func (d *Database) Close() error {
	if d == nil || d.drop == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	drop := d.drop
	d.drop = nil
	return drop(ctx)
}

// createOn creates strata_bench_<hex> on the server of base.
func createOn(ctx context.Context, base string) (*Database, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errors.New("bench: --database-url must be a postgres:// URL: the bench creates a scratch database on its server")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "strata_bench_" + hex.EncodeToString(b)
	conn, err := adminConn(ctx, base)
	if err != nil {
		return nil, fmt.Errorf("bench: connect to %s: %w", u.Redacted(), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("bench: create scratch database %s on %s (the user needs CREATEDB): %w", name, u.Redacted(), err)
	}
	u.Path = "/" + name
	return &Database{URL: u.String(), Source: "server", Name: name,
		drop: func(ctx context.Context) error { return dropDatabase(ctx, base, name) }}, nil
}

func dropDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := adminConn(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("bench: drop database %s: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("bench: drop database %s: %w", name, err)
	}
	return nil
}

func adminConn(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 5*time.Second {
		cfg.ConnectTimeout = 5 * time.Second
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// ServerVersion returns the server_version q's server reports, or "".
func ServerVersion(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}) string {
	var v string
	if err := q.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return ""
	}
	return v
}
