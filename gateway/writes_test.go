package gateway

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"testing"

	"github.com/strata-cqrs/strata/commands"
)

// TestIdempotencyHashLeavesOutSecrets: strata.commands keeps each request's
// hash for idempotency; for a body holding a password that hash must not
// be a fast hash of the password, or reading the table would allow offline
// guessing that skips argon2.
func TestIdempotencyHashLeavesOutSecrets(t *testing.T) {
	g, deps := newTestGateway(t, fakeAccess{"admin": {"users:write", "roles:write"}})
	bodies := []string{
		`{"email":"a@example.com","name":"A","password":"first long password"}`,
		`{"email":"a@example.com","name":"A","password":"other long password"}`,
		`{"email":"b@example.com","name":"A","password":"first long password"}`,
	}
	for _, b := range bodies {
		if rec := serve(g, "admin", "POST", "/users", b); rec.Code != 202 {
			t.Fatalf("POST /users: %d %s", rec.Code, rec.Body)
		}
	}
	subs := deps.submissions()
	if len(subs) != 3 {
		t.Fatalf("%d submissions", len(subs))
	}
	for i, s := range subs {
		raw := sha256.Sum256([]byte("POST /users\n\n" + bodies[i]))
		if bytes.Equal(s.RequestHash, raw[:]) || bytes.Contains(s.Envelope.Payload, []byte("password")) {
			t.Errorf("request %d: the hash or the payload depends on the raw body with its password", i)
		}
		if s.Secret == nil || s.Secret.Kind != "password" {
			t.Errorf("request %d: no staged password", i)
		}
	}
	if !bytes.Equal(subs[0].RequestHash, subs[1].RequestHash) {
		t.Error("the idempotency hash depends on the password")
	}
	if bytes.Equal(subs[0].RequestHash, subs[2].RequestHash) {
		t.Error("the idempotency hash ignores the rest of the body")
	}

	// Bodies without a secret are hashed as sent.
	const role = `{"name":"R"}`
	if rec := serve(g, "admin", "POST", "/roles", role); rec.Code != 202 {
		t.Fatalf("POST /roles: %d %s", rec.Code, rec.Body)
	}
	raw := sha256.Sum256([]byte("POST /roles\n\n" + role))
	if got := deps.submissions()[3].RequestHash; !bytes.Equal(got, raw[:]) {
		t.Error("a body without a secret is not hashed as sent")
	}
}

// TestPasswordChangeAndDisableEndSessions: a stolen refresh token must not
// outlive a password reset, nor come back when a disabled user is enabled.
func TestPasswordChangeAndDisableEndSessions(t *testing.T) {
	g, deps := newTestGateway(t, fakeAccess{"admin": {"users:write"}})
	ended, kept := commands.NewID(), commands.NewID()
	for _, req := range []struct{ path, body string }{
		{"/users/" + ended + "/password", `{"password":"a new long password"}`},
		{"/users/" + ended + "/disable", ""},
		{"/users/" + kept + "/enable", ""},
		{"/users", `{"email":"k@example.com","name":"K","password":"a long password"}`},
	} {
		if rec := serve(g, "admin", "POST", req.path, req.body); rec.Code != 202 {
			t.Fatalf("POST %s: %d %s", req.path, rec.Code, rec.Body)
		}
	}
	deps.mu.Lock()
	defer deps.mu.Unlock()
	if !slices.Equal(deps.revoked, []string{ended, ended}) {
		t.Fatalf("sessions ended for %v, want the password change's and the disable's user", deps.revoked)
	}
}
