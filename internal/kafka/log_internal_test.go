package kafka

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
)

// TestReaderErrorLogLevels: a fetch that timed out (kafka-go redials and
// fetches again) is INFO; any other reader error stays WARN.
func TestReaderErrorLogLevels(t *testing.T) {
	const fetchErr = "the kafka reader got an unknown error reading partition %d of %s at offset %d: %s"
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, c := range []struct {
		name string
		msg  string
		args []any
		want string
	}{
		{"fetch timeout", fetchErr, []any{1, "auth.role", int64(0), timeout}, "level=INFO"},
		{"fetch reset", fetchErr, []any{1, "auth.role", int64(0), &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}}, "level=WARN"},
		{"other timeout", "error initializing the kafka reader for partition %d of %s: %s", []any{1, "auth.role", timeout}, "level=WARN"},
	} {
		var buf bytes.Buffer
		readerErrorLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))(c.msg, c.args...)
		if !strings.Contains(buf.String(), c.want) || !strings.Contains(buf.String(), "auth.role") {
			t.Errorf("%s: logged %q, want %s", c.name, buf.String(), c.want)
		}
	}
}
