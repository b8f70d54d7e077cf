// Package kafka holds the shared Kafka infrastructure: the embedded
// Kafka-protocol broker for development and tests, topic administration, and
// kafka-go writers and consumer-group readers configured for Strata.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultEmbeddedAddr is where StartEmbedded listens unless told otherwise.
const DefaultEmbeddedAddr = "127.0.0.1:9092"

// DefaultPartitions is the embedded broker's partition count for topics
// created without one.
const DefaultPartitions = 6

// groupMinSessionTimeout is the smallest consumer-group session timeout the
// embedded broker accepts; low so tests and dev can rebalance fast.
const groupMinSessionTimeout = 500 * time.Millisecond

// EmbeddedOptions configures StartEmbedded.
type EmbeddedOptions struct {
	// Addr is the host:port to listen on; port 0 picks a free port.
	// Default DefaultEmbeddedAddr. It should be an address clients can dial:
	// the broker advertises exactly this (resolved) address in metadata.
	Addr string
	// DataDir, when set, makes the broker durable: topics, records and
	// committed group offsets are kept there and reloaded on the next start.
	// "" keeps everything in memory.
	DataDir string
	// Partitions is the partition count for topics created without one.
	// Default DefaultPartitions.
	Partitions int
	// Logger receives the broker's warnings and errors. Default: discard.
	Logger *slog.Logger
}

// withDefaults returns o with every unset field defaulted.
func (o EmbeddedOptions) withDefaults() EmbeddedOptions {
	if o.Addr == "" {
		o.Addr = DefaultEmbeddedAddr
	}
	if o.Partitions == 0 {
		o.Partitions = DefaultPartitions
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate reports every problem with o after defaults are applied.
func (o EmbeddedOptions) Validate() error {
	o = o.withDefaults()
	var errs []error
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		errs = append(errs, fmt.Errorf("Addr %q: %w", o.Addr, err))
	}
	if o.Partitions < 1 {
		errs = append(errs, fmt.Errorf("embedded kafka: Partitions %d must be at least 1", o.Partitions))
	}
	return errors.Join(errs...)
}

// Broker is a running embedded Kafka-protocol broker (franz-go kfake): a
// single broker, so every client, whatever its library, is only ever told
// about Addr.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
	log     *slog.Logger
	ln      *listener
	once    sync.Once
}

// StartEmbedded starts one embedded broker listening on o.Addr. When it
// returns without error the broker accepts connections at Addr(), and the
// metadata it serves names only that address. Consumer groups may use
// session timeouts down to 500ms. Topics are not auto-created on metadata
// requests; create them with EnsureTopics. With o.DataDir set, everything
// written (records, topics, committed offsets) survives Close and is
// reloaded by the next StartEmbedded on the same DataDir.
func StartEmbedded(o EmbeddedOptions) (*Broker, error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("kafka: embedded broker options: %w", err)
	}
	tcp, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("kafka: embedded broker: listen on %s: %w", o.Addr, err)
	}
	// Clients in this process that connect through Dial get in-memory
	// connections; others come in over TCP (see inproc.go).
	ln := listen(tcp, o.Logger)
	var handedOut bool
	listenFn := func(string, string) (net.Listener, error) {
		// kfake asks once per broker and we run one broker; it passes
		// 127.0.0.1:<port>, but we listen where we were told to.
		if handedOut {
			return nil, errors.New("kafka: embedded broker supports exactly one listener")
		}
		handedOut = true
		return ln, nil
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(listenFn),
		kfake.DefaultNumPartitions(o.Partitions),
		kfake.GroupMinSessionTimeout(groupMinSessionTimeout),
		kfake.WithLogger(slogAdapter{o.Logger}),
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("kafka: start embedded broker on %s: %w", o.Addr, err)
	}
	b := &Broker{cluster: c, addr: ln.Addr().String(), log: o.Logger, ln: ln}
	o.Logger.Info("kafka: embedded broker listening", "addr", b.addr, "data_dir", o.DataDir)
	return b, nil
}

// Addr returns the host:port the broker listens on and advertises (with the
// actual port when Addr asked for port 0).
func (b *Broker) Addr() string { return b.addr }

// Connections returns how many connections the broker has accepted over
// TCP and in memory (from clients in this process that dial through Dial).
func (b *Broker) Connections() (tcp, inProcess int64) {
	return b.ln.tcpAccepted.Load(), b.ln.memAccepted.Load()
}

// Close stops the broker and, with a DataDir, flushes its state to disk. It
// is safe to call more than once.
func (b *Broker) Close() {
	b.once.Do(func() {
		b.cluster.Close()
		b.ln.Close()
		b.log.Info("kafka: embedded broker stopped", "addr", b.addr)
	})
}

// slogAdapter sends kfake's log lines to slog. kfake logs every request at
// info, so its info lines go to slog's debug level.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Logf(level kfake.LogLevel, msg string, args ...any) {
	var lvl slog.Level
	switch level {
	case kfake.LogLevelError:
		lvl = slog.LevelError
	case kfake.LogLevelWarn:
		lvl = slog.LevelWarn
	case kfake.LogLevelNone:
		return
	default:
		lvl = slog.LevelDebug
	}
	ctx := context.Background()
	if !a.l.Enabled(ctx, lvl) {
		return
	}
	a.l.Log(ctx, lvl, "kfake: "+fmt.Sprintf(msg, args...))
}
