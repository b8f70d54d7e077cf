// Package postgres holds the shared Postgres infrastructure: connection
// pools, schema migrations and, for development, finding or starting a
// Postgres server.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultMaxConns is the pool size Connect uses unless the URL sets
// pool_max_conns.
const DefaultMaxConns = 16

// Connect parses url (a postgres:// URL or a keyword/value DSN), builds a pool
// of at most DefaultMaxConns connections unless the URL sets pool_max_conns,
// and pings the server. On success the returned pool has been proven to reach
// the server; on failure no pool is left open and the error names the host,
// port and database but never the password.
func Connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	if strings.TrimSpace(url) == "" {
		return nil, errors.New("postgres: connect: empty database URL")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn redacts the password in its parse errors.
		return nil, fmt.Errorf("postgres: parse database URL: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if err := RegisterTypes(ctx, conn); err != nil {
			return err
		}
		return priceCachedReads(ctx, conn)
	}
	where := describe(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open pool for %s: %w", where, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s: %w", where, err)
	}
	return pool, nil
}

// priceCachedReads sets random_page_cost to 1.1 for the session unless
// something else set it (the server's configuration, ALTER DATABASE or
// ROLE, the URL or PGOPTIONS). The runtime's hot statements look rows up
// by key in batches of up to thousands (statuses, versions, journal
// heads). With the default of 4, made for spinning disks, Postgres priced
// 2,000 index probes above a sequential scan of a 110,000-row table and
// scanned it, 20-170 ms a batch instead of about 5. 1.1 is the usual
// setting for SSDs or a cached working set. It is set after connecting,
// not as a startup parameter, which PgBouncer refuses and which would
// outrank the database's and the role's own settings.
func priceCachedReads(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, `SELECT set_config('random_page_cost', '1.1', false)
		WHERE (SELECT source FROM pg_settings WHERE name = 'random_page_cost') = 'default'`)
	return err
}

// describe names the server and database of cfg without credentials.
func describe(cfg *pgxpool.Config) string {
	cc := cfg.ConnConfig
	return fmt.Sprintf("%s database %q as %q",
		net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))), cc.Database, cc.User)
}
