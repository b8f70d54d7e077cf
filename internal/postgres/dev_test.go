package postgres_test

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-cqrs/strata/internal/postgres"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// tWriter sends log lines to t.Log, so they show only for failing tests.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestResolveDevEnv(t *testing.T) {
	const u = "postgres://someone@db.example:5432/app"
	r, err := postgres.ResolveDev(t.Context(), postgres.DevOptions{URL: u})
	if err != nil {
		t.Fatalf("ResolveDev: %v", err)
	}
	if r.URL != u || r.Source != postgres.SourceEnv {
		t.Errorf("got %q from %q, want %q from env", r.URL, r.Source, u)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestDevOptionsValidate(t *testing.T) {
	if err := (postgres.DevOptions{}).Validate(); err == nil {
		t.Error("empty options validated, want DataDir required")
	}
	if err := (postgres.DevOptions{DataDir: "x", LocalAddr: "nonsense"}).Validate(); err == nil {
		t.Error("LocalAddr without a port validated")
	}
	if err := (postgres.DevOptions{DataDir: "x"}).Validate(); err != nil {
		t.Errorf("DataDir alone: %v", err)
	}
	if _, err := postgres.ResolveDev(t.Context(), postgres.DevOptions{}); err == nil {
		t.Error("ResolveDev accepted empty options")
	}
}

// adminConn connects to url, failing the test if it cannot.
func adminConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestResolveDevLocal(t *testing.T) {
	const admin = "postgres://postgres@" + postgres.DefaultLocalAddr + "/postgres?sslmode=disable&connect_timeout=2"
	probe, err := pgx.Connect(t.Context(), admin)
	if err != nil {
		t.Skipf("no server accepting user postgres at %s: %v", postgres.DefaultLocalAddr, err)
	}
	probe.Close(t.Context())
	conn := adminConn(t, admin)

	dataDir := t.TempDir()
	opts := postgres.DevOptions{DataDir: dataDir, Logger: testLogger(t)}
	r, err := postgres.ResolveDev(t.Context(), opts)
	if err != nil {
		t.Fatalf("ResolveDev: %v", err)
	}
	if r.Source != postgres.SourceLocal {
		t.Fatalf("Source = %q, want local", r.Source)
	}
	recorded, err := os.ReadFile(filepath.Join(dataDir, postgres.DatabaseFile))
	if err != nil {
		t.Fatalf("database name not recorded: %v", err)
	}
	name := strings.TrimSpace(string(recorded))
	if !regexp.MustCompile(`^strata_[0-9a-f]{8}$`).MatchString(name) {
		t.Fatalf("recorded database name %q, want strata_<8 hex>", name)
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	if !strings.Contains(r.URL, "/"+name+"?") {
		t.Errorf("URL %q does not name database %s", r.URL, name)
	}
	db := adminConn(t, r.URL)
	if _, err := db.Exec(t.Context(), "CREATE TABLE kept (v int)"); err != nil {
		t.Fatal(err)
	}
	db.Close(t.Context())
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	// A restart reuses the same database.
	r2, err := postgres.ResolveDev(t.Context(), opts)
	if err != nil {
		t.Fatalf("second ResolveDev: %v", err)
	}
	if r2.URL != r.URL || r2.Source != postgres.SourceLocal {
		t.Fatalf("second start got %q (%s), want %q (local)", r2.URL, r2.Source, r.URL)
	}
	db = adminConn(t, r2.URL)
	if _, err := db.Exec(t.Context(), "SELECT * FROM kept"); err != nil {
		t.Fatalf("table from the first start is gone: %v", err)
	}
	db.Close(t.Context())

	// If the database was dropped, the next start creates it again.
	if _, err := conn.Exec(t.Context(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	r3, err := postgres.ResolveDev(t.Context(), opts)
	if err != nil {
		t.Fatalf("ResolveDev after drop: %v", err)
	}
	if r3.URL != r.URL {
		t.Fatalf("after drop got %q, want the same %q", r3.URL, r.URL)
	}
	adminConn(t, r3.URL)
}

func TestResolveDevPrivateCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	// t.TempDir's parent is 0700: as root, the postgres user cannot reach
	// it, so the cluster moves under the system temp dir.
	testPrivateCluster(t, t.TempDir(), os.Geteuid() != 0)
}

func TestResolveDevPrivateClusterInDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	if os.Geteuid() != 0 {
		t.Skip("only root needs the cluster's parents checked")
	}
	dataDir := t.TempDir()
	if err := os.Chmod(filepath.Dir(dataDir), 0o755); err != nil {
		t.Fatal(err)
	}
	testPrivateCluster(t, dataDir, true)
}

// testPrivateCluster starts a private cluster for dataDir, writes to it,
// stops it, starts it again and reads back. inDataDir says where the cluster
// must be: <dataDir>/pg, or under os.TempDir() recorded in pg-location.
func testPrivateCluster(t *testing.T, dataDir string, inDataDir bool) {
	if _, err := os.Stat("/usr/lib/postgresql"); err != nil {
		if _, err := exec.LookPath("initdb"); err != nil {
			t.Skip("no PostgreSQL server binaries")
		}
	}
	opts := postgres.DevOptions{
		DataDir:   dataDir,
		Logger:    testLogger(t),
		LocalAddr: closedAddr(t), // no local server: forces the private cluster
	}
	start := func() *postgres.Resolved {
		t.Helper()
		r, err := postgres.ResolveDev(t.Context(), opts)
		if err != nil {
			t.Fatalf("ResolveDev: %v", err)
		}
		t.Cleanup(func() {
			if err := r.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		if r.Source != postgres.SourcePrivate {
			t.Fatalf("Source = %q, want private", r.Source)
		}
		if !strings.HasPrefix(r.URL, "postgres://postgres@127.0.0.1:") || !strings.Contains(r.URL, "/strata?") {
			t.Fatalf("URL %q, want database strata on 127.0.0.1", r.URL)
		}
		return r
	}
	// Remove a cluster placed outside the data dir (after it is stopped:
	// cleanups run last-registered first).
	t.Cleanup(func() {
		if loc, err := os.ReadFile(filepath.Join(dataDir, postgres.LocationFile)); err == nil {
			dir := strings.TrimSpace(string(loc))
			if strings.HasPrefix(dir, os.TempDir()) {
				os.RemoveAll(dir)
			}
		}
	})

	r := start()
	db := adminConn(t, r.URL)
	if _, err := db.Exec(t.Context(), "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	db.Close(t.Context())

	clusterDir := filepath.Join(dataDir, "pg")
	if loc, err := os.ReadFile(filepath.Join(dataDir, postgres.LocationFile)); err == nil {
		clusterDir = strings.TrimSpace(string(loc))
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(clusterDir, "data", "PG_VERSION")); err != nil {
		t.Fatalf("no cluster at %s: %v", clusterDir, err)
	}
	if want := filepath.Join(dataDir, "pg"); inDataDir && clusterDir != want {
		t.Errorf("cluster at %s, want %s", clusterDir, want)
	}
	if !inDataDir && !strings.HasPrefix(clusterDir, os.TempDir()+string(filepath.Separator)+"strata-pg-") {
		t.Errorf("cluster at %s, want it under %s, recorded in %s", clusterDir, os.TempDir(), postgres.LocationFile)
	}
	if os.Geteuid() == 0 {
		fi, err := os.Stat(filepath.Join(clusterDir, "data"))
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid == 0 {
			t.Errorf("data dir owned by root, want the postgres user")
		}
	}

	// Resolving again while it runs reuses the running cluster.
	again, err := postgres.ResolveDev(t.Context(), opts)
	if err != nil {
		t.Fatalf("ResolveDev while running: %v", err)
	}
	if again.URL != r.URL {
		t.Errorf("while running got %q, want the running %q", again.URL, r.URL)
	}

	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Errorf("second Close of a stopped cluster: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	if c, err := pgx.Connect(ctx, r.URL+"&connect_timeout=2"); err == nil {
		c.Close(ctx)
		t.Error("cluster still answers after Close")
	}
	cancel()

	// Same data dir again: the data survived the restart.
	r2 := start()
	db = adminConn(t, r2.URL)
	var v int
	if err := db.QueryRow(t.Context(), "SELECT v FROM kept").Scan(&v); err != nil || v != 42 {
		t.Fatalf("after restart SELECT v FROM kept = %d, %v; want 42", v, err)
	}
	db.Close(t.Context())
}
