package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/internal/testkit"
)

// TestBinaryShutsDownOnSIGTERM builds the real binary, runs `strata dev`,
// writes through it, stops it with SIGTERM (it must exit 0), and starts it
// again on the same data dir: the data is there and bootstrap adds nothing.
func TestBinaryShutsDownOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "strata")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir, db := t.TempDir(), testkit.Postgres(t)
	run := func() (*exec.Cmd, string) {
		cmd := exec.Command(bin, "dev", "--http-addr", "127.0.0.1:0", "--kafka-addr", "127.0.0.1:0",
			"--data-dir", dir, "--database-url", db, "--log-level", "warn")
		cmd.Env = append(os.Environ(), "STRATA_ADMIN_EMAIL="+adminEmail, "STRATA_ADMIN_PASSWORD="+adminPassword)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return cmd, waitForURL(t, out)
	}
	stop := func(cmd *exec.Cmd) {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("strata dev did not exit cleanly on SIGTERM: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("strata dev did not stop within 30 s of SIGTERM")
		}
	}
	pool, err := postgres.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	events := func() int {
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM auth.events WHERE aggregate_type <> 'login'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	cmd, url := run()
	c := &client{t: t, base: url}
	c.login(adminEmail, adminPassword)
	role := c.wait("POST", "/roles", `{"name":"Survivor"}`, 201).str("id")
	stop(cmd)
	before := events()

	cmd, url = run()
	defer stop(cmd)
	c = &client{t: t, base: url}
	c.login(adminEmail, adminPassword)
	if r := c.do("GET", "/roles/"+role, ""); r.Status != 200 || r.str("name") != "Survivor" {
		t.Fatalf("after restart: %d %s", r.Status, r.Raw)
	}
	if after := events(); after != before {
		t.Fatalf("the restart wrote %d events; bootstrap must be idempotent", after-before)
	}
	r := c.wait("PATCH", "/roles/"+role, `{"name":"Survivor2"}`, 200)
	if r.Body["version"] != 2.0 {
		t.Fatalf("versions did not continue: %s", r.Raw)
	}
}

var urlLine = regexp.MustCompile(`HTTP\s+(http://\S+)`)

// waitForURL reads the dev banner until it names the HTTP URL, then keeps
// draining the output in the background.
func waitForURL(t *testing.T, out io.Reader) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			if m := urlLine.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- strings.TrimSpace(m[1])
				sent = true
			}
		}
	}()
	select {
	case u := <-found:
		return u
	case <-time.After(60 * time.Second):
		t.Fatal("strata dev printed no URL within 60 s")
		return ""
	}
}
