package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"strings"
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

// TestWritesProduceWhileRecording: a command without an Idempotency-Key,
// secret or sessions to end is produced while its pending row is written.
// A failed produce fails the request (503, the row marked failed); a
// failed pending row after a produce that went through does not, because
// a retry would submit the command twice. A command with an
// Idempotency-Key is still produced only after its row is written.
func TestWritesProduceWhileRecording(t *testing.T) {
	down := errors.New("down")
	for _, c := range []struct {
		name                string
		sendErr, pendingErr error
		pendingFails        int
		key, wait           string
		status, attempts    int
		sent, failed        bool
	}{
		{name: "BothGoThrough", status: 202, attempts: 1, sent: true},
		{name: "ProduceFails", sendErr: down, status: 503, attempts: 1, sent: true, failed: true},
		{name: "PendingRowFailsAfterTheProduce", pendingErr: down, pendingFails: -1, status: 202, attempts: 2, sent: true},
		{name: "PendingRowFailsAfterTheProduceWithWait", pendingErr: down, pendingFails: -1, wait: "wait=1", status: 202, attempts: 2, sent: true},
		// The produce may have gone through although it reports a failure:
		// the row written at the second attempt is marked failed, so that a
		// worker skips the command the client is told to retry.
		{name: "BothFailThenTheRowIsWritten", sendErr: down, pendingErr: down, pendingFails: 1, status: 503, attempts: 2, sent: true, failed: true},
		{name: "BothFail", sendErr: down, pendingErr: down, pendingFails: -1, status: 503, attempts: 2, sent: true},
		{name: "KeyedCommandWaitsForItsRow", pendingErr: down, pendingFails: -1, key: "k-1", status: 503, attempts: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, deps := newTestGateway(t, fakeAccess{"admin": {"roles:write"}})
			deps.sendErr, deps.pendingErr, deps.pendingFails = c.sendErr, c.pendingErr, c.pendingFails
			req := `{"name":"R"}`
			res := serveWith(g, "admin", "POST", "/roles", req, "Idempotency-Key", c.key, "Prefer", c.wait)
			if res.Code != c.status {
				t.Fatalf("POST /roles: %d %s, want %d", res.Code, res.Body, c.status)
			}
			subs := deps.submissions()
			if len(subs) != c.attempts {
				t.Fatalf("%d pending rows attempted, want %d", len(subs), c.attempts)
			}
			id := subs[0].Envelope.ID
			deps.mu.Lock()
			sent, failed := slices.Contains(deps.sent, id), slices.Contains(deps.failed, id)
			deps.mu.Unlock()
			if sent != c.sent || failed != c.failed {
				t.Fatalf("produced %v, marked failed %v; want %v, %v", sent, failed, c.sent, c.failed)
			}
			var body map[string]any
			if err := json.Unmarshal(res.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			switch res.Code {
			case 202:
				if body["command_id"] != id || body["status"] != "pending" ||
					!strings.HasSuffix(res.Header().Get("Location"), "/commands/"+id) {
					t.Fatalf("202 %v %s, want the produced command %s", res.Header(), res.Body, id)
				}
			case 503:
				if body["code"] != "unavailable" || res.Header().Get("Retry-After") == "" {
					t.Fatalf("503 %v %s, want code unavailable with Retry-After", res.Header(), res.Body)
				}
			}
		})
	}
}
