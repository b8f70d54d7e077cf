package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/strata-cqrs/strata/internal/testkit"
)

// BenchmarkGatewayAuthorised measures authorised requests through the real
// gateway of a running `strata dev`: JWT verification, the cached access
// check, and the handler. Run with -cpu 1 for the one-core figure.
func BenchmarkGatewayAuthorised(b *testing.B) {
	d := startDev(b, b.TempDir(), testkit.Postgres(b))
	defer d.Close()
	c := admin(b, d)
	role := c.wait("POST", "/roles", `{"name":"bench"}`, 201).str("id")
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	send := func(b *testing.B, method, path, body string, want int) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, d.URL()+path, rd)
		req.Header.Set("Authorization", "Bearer "+c.token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			b.Fatalf("%s %s: %d", method, path, res.StatusCode)
		}
	}
	b.Run("GET", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			send(b, "GET", "/roles/"+role, "", 200)
		}
	})
	b.Run("POST", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			send(b, "POST", "/roles", fmt.Sprintf(`{"name":"r%d-%d"}`, b.N, i), 202)
		}
	})
}
