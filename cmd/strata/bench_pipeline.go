package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/strata-cqrs/strata/aggregates"
	authdomain "github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/commands"
	"github.com/strata-cqrs/strata/internal/bench"
	"github.com/strata-cqrs/strata/internal/config"
	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/schemas"
)

// pieces is what the relay, projector and baseline scenarios build on: a
// scratch database and a broker (embedded unless --kafka), with no
// platform component running.
type pieces struct {
	db      *bench.Database
	pool    *pgxpool.Pool // the bench's own connections
	brokers []string
	// ns names the journal schema and prefixes the topics: the auth
	// service's own names on the embedded broker, bench<hex> on a broker
	// others use.
	ns  string
	reg *commands.Registry
	def *aggregates.Definition // auth.role
}

func (m *BenchMain) pieces(ctx context.Context, rep *bench.Report) (*pieces, error) {
	dir, db, err := m.scratch(ctx, rep)
	if err != nil {
		return nil, err
	}
	pool, err := m.connect(ctx, db.URL)
	if err != nil {
		return nil, err
	}
	rep.Machine.Postgres = bench.ServerVersion(ctx, pool)
	reg, err := registry()
	if err != nil {
		return nil, err
	}
	def, _ := reg.Aggregate(authdomain.Service, "role")
	p := &pieces{db: db, pool: pool, reg: reg, def: def}
	if m.opts.kafka == "" {
		b, err := kafka.StartEmbedded(kafka.EmbeddedOptions{Addr: "127.0.0.1:0", DataDir: filepath.Join(dir, "kafka"),
			Partitions: m.opts.partitions, Logger: m.log})
		if err != nil {
			return nil, err
		}
		m.onClose(func() error { b.Close(); return nil })
		p.brokers, p.ns = []string{b.Addr()}, authdomain.Service
		cfg := m.cfg
		cfg.Partitions = m.opts.partitions
		if err := kafka.EnsureTopics(ctx, p.brokers, topics(&cfg)); err != nil { // the platform's, as strata dev makes them
			return nil, err
		}
		rep.Params.Set("kafka", "embedded")
	} else {
		p.brokers, p.ns = config.SplitList(m.opts.kafka), "bench"+randomHex(4)
		rep.Params.Set("kafka", m.opts.kafka)
	}
	return p, nil
}

// connect opens a pool closed at Close.
func (m *BenchMain) connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pool, err := postgres.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	m.onClose(func() error { pool.Close(); return nil })
	return pool, nil
}

// createTopics creates topics with the bench's partitions; on a broker the
// bench did not start they are deleted at Close.
func (m *BenchMain) createTopics(ctx context.Context, p *pieces, names ...string) error {
	var ts []kafka.Topic
	for _, n := range names {
		ts = append(ts, kafka.Topic{Name: n, Partitions: m.opts.partitions, Configs: map[string]string{"retention.ms": "-1"}})
	}
	if err := kafka.EnsureTopics(ctx, p.brokers, ts); err != nil {
		return err
	}
	if m.opts.kafka != "" {
		m.onClose(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return kafka.DeleteTopics(ctx, p.brokers, names...)
		})
	}
	return nil
}

// stallTimeout is how long a pipeline may make no progress before the
// bench gives up on it.
const stallTimeout = time.Minute

// stall tracks progress and reports when there has been none for
// stallTimeout.
type stall struct {
	last int64
	at   time.Time
}

func (s *stall) stuck(progress int64, now time.Time) bool {
	if s.at.IsZero() || progress != s.last {
		s.last, s.at = progress, now
	}
	return now.Sub(s.at) > stallTimeout
}

// warmupEvents is how many events warm a pipeline up before N are timed.
func warmupEvents(n int) int { return min(max(n/10, 500), 10_000) }

// grantsPerRole is how many events follow each RoleCreated: a grant of
// every built-in permission.
var grantsPerRole = len(authdomain.BuiltinPermissions)

// roleHistory is the events of the i-th bench role of a batch: RoleCreated,
// then up to k-1 grants, one per built-in permission.
func roleHistory(prefix string, i, k int, perms []string) []aggregates.Event {
	events := []aggregates.Event{authdomain.RoleCreated{Name: fmt.Sprintf("%s role %d", prefix, i), Description: "strata bench"}}
	for j := 0; len(events) < k && j < len(perms); j++ {
		events = append(events, authdomain.PermissionGranted{PermissionID: perms[j], PermissionName: authdomain.BuiltinPermissions[j]})
	}
	return events
}

// benchPermissions gives each built-in permission an id for a run.
func benchPermissions() []string {
	ids := make([]string, grantsPerRole)
	for i := range ids {
		ids[i] = commands.NewID()
	}
	return ids
}

// roleEvents returns n journal events of roles (RoleCreated, then grants),
// version-major across roles so that every batch touches many aggregates,
// as under concurrent load; each event has its own command, all issued by
// actor, and the hashes are chained per role as the journal does.
func roleEvents(def *aggregates.Definition, prefix, actor string, n int, perms []string) ([]commands.JournalEvent, error) {
	roles := (n + grantsPerRole) / (grantsPerRole + 1)
	ids, prev := make([]string, roles), make([][]byte, roles)
	now := time.Now().UTC().Truncate(time.Microsecond)
	out := make([]commands.JournalEvent, 0, n)
	for v := int64(1); len(out) < n; v++ {
		for r := 0; r < roles && len(out) < n; r++ {
			if v == 1 {
				ids[r], prev[r] = commands.NewID(), commands.GenesisHash
			}
			e := roleHistory(prefix, r, int(v), perms)[v-1]
			data, err := commands.CanonicalJSONOf(e)
			if err != nil {
				return nil, err
			}
			cmd := commands.NewID()
			je := commands.JournalEvent{
				EventID: commands.NewID(), AggregateType: def.Type, AggregateID: ids[r], Version: v,
				Type: def.QualifiedEvent(e), Data: data, OccurredAt: now, PrevHash: prev[r],
				Metadata: commands.Metadata{CommandID: cmd, CorrelationID: cmd, CausationID: cmd, Actor: actor},
			}
			if je.Hash, err = je.ComputeHash(); err != nil {
				return nil, err
			}
			prev[r] = je.Hash
			out = append(out, je)
		}
	}
	return out, nil
}

func relayMessages(topic, service string, events []commands.JournalEvent) ([]kafkago.Message, error) {
	msgs := make([]kafkago.Message, len(events))
	for i := range events {
		var err error
		if msgs[i], err = commands.EventMessage(topic, service, &events[i], schemas.DataSchemaURI(events[i].Type)); err != nil {
			return nil, err
		}
	}
	return msgs, nil
}

// aggregateCount is the number of distinct aggregates of events.
func aggregateCount(events []commands.JournalEvent) int {
	ids := map[string]bool{}
	for _, e := range events {
		ids[e.AggregateID] = true
	}
	return len(ids)
}

// rawRows are events as the raw Postgres baselines write them.
func rawRows(events []commands.JournalEvent) []bench.Row {
	rows := make([]bench.Row, len(events))
	for i, e := range events {
		rows[i] = bench.Row{AggregateID: e.AggregateID, Version: e.Version, Type: e.Type, Data: e.Data}
	}
	return rows
}

// insertAccepted records an accepted command for each event, as the
// worker would have, so the projector marks real rows projected.
func insertAccepted(ctx context.Context, pool *pgxpool.Pool, service string, events []commands.JournalEvent) error {
	now := time.Now()
	_, err := pool.CopyFrom(ctx, pgx.Identifier{"strata", "commands"},
		[]string{"id", "service", "type", "aggregate_id", "actor", "status", "version", "submitted_at", "decided_at"},
		pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
			e := &events[i]
			typ := service + ".GrantPermission"
			if e.Version == 1 {
				typ = service + ".CreateRole"
			}
			return []any{e.Metadata.CommandID, service, typ, e.AggregateID, e.Metadata.Actor, commands.StatusAccepted,
				e.Version, now, now}, nil
		}))
	return err
}
