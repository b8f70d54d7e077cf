package main

import (
	"context"
	"testing"
	"time"

	"github.com/strata-cqrs/strata/commands"
	"github.com/strata-cqrs/strata/internal/kafka"
)

// countTopic reads topic from the start in a fresh consumer group and
// returns how many records it holds: it reads until it saw want records and
// then one quiet second passed, or until 10 s of silence.
func countTopic(t *testing.T, addr, topic string, want int) int {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderOptions{Brokers: []string{addr}, GroupID: "count-" + commands.NewID(), Topics: []string{topic}})
	defer r.Close()
	n := 0
	for {
		quiet := 10 * time.Second
		if n >= want {
			quiet = time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), quiet)
		_, err := r.FetchMessage(ctx)
		cancel()
		if err != nil {
			break
		}
		n++
	}
	return n
}
