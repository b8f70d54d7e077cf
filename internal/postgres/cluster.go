//go:build unix

package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// privateDatabase is the database ResolveDev creates in a private cluster.
const privateDatabase = "strata"

// pgBinRoot is where Debian-style packages install PostgreSQL versions.
const pgBinRoot = "/usr/lib/postgresql"

// Time limits for pg_ctl.
const (
	pgStartTimeout = 60 * time.Second
	pgStopTimeout  = 60 * time.Second
)

// maxSocketPath is the longest unix socket path we hand to postgres
// (sockaddr_un.sun_path holds 108 bytes including the NUL on Linux, 104 on
// the BSDs).
const maxSocketPath = 100

// pgBins names the PostgreSQL programs ResolveDev runs.
type pgBins struct {
	initdb, pgCtl string
}

// cluster is a private PostgreSQL cluster: its directory, the binaries that
// run it, and the user they run as.
type cluster struct {
	bins pgBins
	dir  string // the cluster directory: data/, run/, postgres.log
	log  *slog.Logger
	// owner is the unprivileged user the cluster runs as when this process
	// is root; nil means "as this process".
	owner *osUser
}

// osUser is a resolved system account.
type osUser struct {
	name     string
	uid, gid int
	groups   []int
}

func (c *cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *cluster) runDir() string  { return filepath.Join(c.dir, "run") }
func (c *cluster) logFile() string { return filepath.Join(c.dir, "postgres.log") }

// startPrivate starts (initialising first if needed) the private cluster of
// dataDir, which must be absolute and exist, and makes sure it holds the
// strata database.
func startPrivate(ctx context.Context, dataDir string, log *slog.Logger) (*Resolved, error) {
	bins, err := findPGBins()
	if err != nil {
		return nil, err
	}
	c := &cluster{bins: bins, log: log}
	if os.Geteuid() == 0 {
		u, err := lookupUser("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, and PostgreSQL refuses to run as root: need the postgres user to run the cluster as: %w", err)
		}
		c.owner = u
	}
	if c.dir, err = clusterDir(dataDir, c.owner, log); err != nil {
		return nil, err
	}
	if err := c.prepareDirs(); err != nil {
		return nil, err
	}
	if err := c.initdb(ctx); err != nil {
		return nil, err
	}
	port, err := c.start(ctx)
	if err != nil {
		return nil, err
	}
	r := &Resolved{
		URL:    fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, privateDatabase),
		Source: SourcePrivate,
		stop:   c.stop,
	}
	if err := c.ensureStrataDB(ctx, port); err != nil {
		_ = r.Close()
		return nil, err
	}
	log.Info("postgres: private cluster ready", "source", SourcePrivate, "dir", c.dir, "port", port, "database", privateDatabase)
	return r, nil
}

// findPGBins locates initdb and pg_ctl: the newest version under
// /usr/lib/postgresql/*/bin, else PATH.
func findPGBins() (pgBins, error) {
	dirs, _ := filepath.Glob(filepath.Join(pgBinRoot, "*", "bin"))
	slices.SortFunc(dirs, func(a, b string) int { // newest first
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	for _, d := range dirs {
		b := pgBins{initdb: filepath.Join(d, "initdb"), pgCtl: filepath.Join(d, "pg_ctl")}
		if isExecutable(b.initdb) && isExecutable(b.pgCtl) {
			return b, nil
		}
	}
	initdb, err1 := exec.LookPath("initdb")
	pgCtl, err2 := exec.LookPath("pg_ctl")
	if err := errors.Join(err1, err2); err != nil {
		return pgBins{}, fmt.Errorf("no PostgreSQL server binaries under %s/*/bin or in PATH (install the postgresql package, or run a server at 127.0.0.1:5432, or set a database URL): %w", pgBinRoot, err)
	}
	return pgBins{initdb: initdb, pgCtl: pgCtl}, nil
}

// compareVersions compares dotted numeric versions ("15", "9.6"); parts that
// are not numbers compare as 0.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(pa), len(pb)) {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// lookupUser resolves a system account by name.
func lookupUser(name string) (*osUser, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", name, u.Gid, err)
	}
	out := &osUser{name: name, uid: uid, gid: gid, groups: []int{gid}}
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.Atoi(s); err == nil && !slices.Contains(out.groups, g) {
				out.groups = append(out.groups, g)
			}
		}
	}
	return out, nil
}

// clusterDir decides where the cluster of dataDir lives: the location
// recorded in pg-location if any, else <dataDir>/pg if owner (nil: this
// process) can traverse dataDir and all its parents, else a directory under
// the system temp dir, which is then recorded in pg-location.
func clusterDir(dataDir string, owner *osUser, log *slog.Logger) (string, error) {
	locFile := filepath.Join(dataDir, LocationFile)
	recorded, err := readTrimmed(locFile)
	if err != nil {
		return "", err
	}
	if recorded != "" {
		if !filepath.IsAbs(recorded) {
			return "", fmt.Errorf("%s holds %q, which is not an absolute path", locFile, recorded)
		}
		return recorded, nil
	}
	inPlace := filepath.Join(dataDir, "pg")
	if owner == nil {
		return inPlace, nil
	}
	blocked := untraversable(dataDir, owner)
	if blocked == "" {
		return inPlace, nil
	}
	sum := sha256.Sum256([]byte(dataDir))
	tmp := filepath.Join(os.TempDir(), "strata-pg-"+hex.EncodeToString(sum[:8]))
	if b := untraversable(os.TempDir(), owner); b != "" {
		return "", fmt.Errorf("user %s can traverse neither %s nor %s, so there is no place for the cluster", owner.name, blocked, b)
	}
	if err := writeFileAtomic(locFile, tmp+"\n"); err != nil {
		return "", err
	}
	log.Info("postgres: the cluster's user cannot reach the data dir, using the temp dir instead",
		"user", owner.name, "blocked_at", blocked, "cluster_dir", tmp, "recorded_in", locFile)
	return tmp, nil
}

// untraversable returns the first of dir and its parents (from dir upwards)
// that u may not search, judged by the permission bits, or "" if u can reach
// dir.
func untraversable(dir string, u *osUser) string {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return d
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return d
		}
		perm := fi.Mode().Perm()
		var can bool
		switch {
		case int(st.Uid) == u.uid:
			can = perm&0o100 != 0
		case slices.Contains(u.groups, int(st.Gid)):
			can = perm&0o010 != 0
		default:
			can = perm&0o001 != 0
		}
		if !can {
			return d
		}
		if parent := filepath.Dir(d); parent == d {
			return ""
		}
	}
}

// prepareDirs creates the cluster directory and hands it to the owner.
func (c *cluster) prepareDirs() error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("create cluster dir: %w", err)
	}
	if err := os.Chmod(c.dir, 0o700); err != nil {
		return fmt.Errorf("cluster dir: %w", err)
	}
	if err := c.chown(c.dir); err != nil {
		return err
	}
	return nil
}

// chown gives path to the cluster's owner (nothing to do without one).
func (c *cluster) chown(path string) error {
	if c.owner == nil {
		return nil
	}
	if err := os.Chown(path, c.owner.uid, c.owner.gid); err != nil {
		return fmt.Errorf("hand %s to user %s: %w", path, c.owner.name, err)
	}
	return nil
}

// strataConf is the file, included from postgresql.conf, that holds the
// settings ResolveDev manages.
const strataConf = "strata.conf"

// initdb initialises the data directory unless it already holds a cluster.
// A data directory left half-initialised by an interrupted initdb is
// removed and initialised again.
func (c *cluster) initdb(ctx context.Context) error {
	data := c.dataDir()
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
		return nil
	}
	if err := os.RemoveAll(data); err != nil {
		return fmt.Errorf("remove half-initialised data dir: %w", err)
	}
	c.log.Info("postgres: initialising a private cluster", "dir", data, "initdb", c.bins.initdb)
	out, err := c.run(ctx, c.bins.initdb,
		"--pgdata", data,
		"--username", "postgres",
		"--auth", "trust",
		"--encoding", "UTF8",
		"--locale", "C",
		"--no-sync",
	)
	if err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	conf := filepath.Join(data, "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("postgresql.conf: %w", err)
	}
	_, err = fmt.Fprintf(f, "\n# Settings managed by strata (rewritten at every start).\ninclude_if_exists = '%s'\n", strataConf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("postgresql.conf: %w", err)
	}
	return nil
}

// start starts the cluster on a free port, or finds it already running, and
// returns its port.
func (c *cluster) start(ctx context.Context) (int, error) {
	if port, ok := c.running(ctx); ok {
		c.log.Info("postgres: private cluster already running, reusing it", "dir", c.dir, "port", port)
		return port, nil
	}
	var lastErr error
	for range 3 { // a port found free can be taken before postgres binds it
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		if err := c.writeConf(port); err != nil {
			return 0, err
		}
		out, err := c.run(ctx, c.bins.pgCtl, "start",
			"--pgdata", c.dataDir(),
			"--log", c.logFile(),
			"--wait", "--timeout", strconv.Itoa(int(pgStartTimeout/time.Second)),
			"--silent")
		if err == nil {
			return port, nil
		}
		lastErr = fmt.Errorf("pg_ctl start on port %d: %w\n%s\nlast lines of %s:\n%s", port, err, out, c.logFile(), tail(c.logFile(), 15))
		if ctx.Err() != nil {
			break
		}
	}
	return 0, lastErr
}

// running reports whether the cluster is up, and its port.
func (c *cluster) running(ctx context.Context) (int, bool) {
	if _, err := c.run(ctx, c.bins.pgCtl, "status", "--pgdata", c.dataDir()); err != nil {
		return 0, false
	}
	// postmaster.pid: pid, data dir, start time, port, socket dir, ...
	b, err := os.ReadFile(filepath.Join(c.dataDir(), "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, false
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil {
		return 0, false
	}
	return port, true
}

// writeConf writes the settings for this start: listen on 127.0.0.1:port
// only, with the unix socket inside the cluster dir when its path fits
// (else no unix socket).
func (c *cluster) writeConf(port int) error {
	sockDir := ""
	if len(filepath.Join(c.runDir(), ".s.PGSQL.65535.lock")) <= maxSocketPath {
		sockDir = c.runDir()
		if err := os.MkdirAll(sockDir, 0o700); err != nil {
			return fmt.Errorf("socket dir: %w", err)
		}
		if err := c.chown(sockDir); err != nil {
			return err
		}
	}
	conf := fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = %s\n",
		port, confQuote(sockDir))
	file := filepath.Join(c.dataDir(), strataConf)
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return c.chown(file)
}

// confQuote quotes s as a postgresql.conf string.
func confQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// stop stops the cluster (fast shutdown: open sessions are disconnected,
// committed work is kept) and waits until it is down.
func (c *cluster) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), pgStopTimeout+5*time.Second)
	defer cancel()
	out, err := c.run(ctx, c.bins.pgCtl, "stop",
		"--pgdata", c.dataDir(),
		"--mode", "fast",
		"--wait", "--timeout", strconv.Itoa(int(pgStopTimeout/time.Second)),
		"--silent")
	if err != nil {
		if _, running := c.running(ctx); !running {
			return nil // already stopped, by another Resolved or by hand
		}
		return fmt.Errorf("postgres: pg_ctl stop: %w\n%s", err, out)
	}
	c.log.Info("postgres: private cluster stopped", "dir", c.dir)
	return nil
}

// ensureStrataDB creates the strata database in the running cluster.
func (c *cluster) ensureStrataDB(ctx context.Context, port int) error {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port))
	if err != nil {
		return err
	}
	cfg.ConnectTimeout = 10 * time.Second
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to private cluster on port %d: %w", port, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return ensureDatabase(ctx, conn, privateDatabase)
}

// run runs a PostgreSQL program as the cluster's owner, in the cluster dir,
// without any PG* variables from this process's environment, and returns its
// combined output.
func (c *cluster) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = c.dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.owner != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{
			Uid:    uint32(c.owner.uid),
			Gid:    uint32(c.owner.gid),
			Groups: toUint32s(c.owner.groups),
		}
		cmd.Env = append(cmd.Env, "USER="+c.owner.name, "LOGNAME="+c.owner.name)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second // pg_ctl's server never keeps our pipes, but never hang on it
	err := cmd.Run()
	return bytes.TrimSpace(out.Bytes()), err
}

func toUint32s(xs []int) []uint32 {
	out := make([]uint32, len(xs))
	for i, x := range xs {
		out[i] = uint32(x)
	}
	return out
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of file, or a note why it cannot.
func tail(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
