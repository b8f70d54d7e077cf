package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/internal/postgres"
)

// Migrations returns the schema of the command status table and of each
// service's journal. Each service's journal lives in its own schema.
func Migrations(services ...string) []postgres.Migration {
	ms := []postgres.Migration{
		{Component: "strata.commands", Version: 1, SQL: statusSchema},
		// Status changes (pending → accepted → projected) touch no indexed
		// column, so with room on the page they are HOT updates; the lag
		// check finds recent commands through a BRIN index.
		{Component: "strata.commands", Version: 2, SQL: `ALTER TABLE strata.commands SET (fillfactor = 70);
CREATE INDEX commands_submitted ON strata.commands USING brin (submitted_at);`},
		// recorded_at is the database's time of the row's (re)recording as
		// pending, never updated by a decision (HOT stays): the janitor ages
		// pending rows by it, not by the gateway's clock.
		{Component: "strata.commands", Version: 3, SQL: `ALTER TABLE strata.commands ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX commands_recorded ON strata.commands USING brin (recorded_at);`},
		// A command's row is written three times (pending, accepted,
		// projected), and a projector settles a batch's rows, neighbours on
		// their pages, in one transaction, so their old versions cannot be
		// pruned yet: at fillfactor 70 fewer than half of those updates
		// found room on the page, and the rest updated every index. At 50
		// nearly all are HOT, which made them a quarter cheaper, for a
		// table about 40% larger.
		{Component: "strata.commands", Version: 4, SQL: `ALTER TABLE strata.commands SET (fillfactor = 50)`},
	}
	for _, s := range services {
		ms = append(ms,
			postgres.Migration{Component: s + ".journal", Version: 1, SQL: journalSchema(s)},
			postgres.Migration{Component: s + ".journal", Version: 2, SQL: secretsSchema(s)},
			postgres.Migration{Component: s + ".journal", Version: 3, SQL: outboxSchema(s)})
	}
	return ms
}

const statusSchema = `
CREATE SCHEMA IF NOT EXISTS strata;
CREATE TABLE strata.commands (
	id              uuid PRIMARY KEY,
	service         text NOT NULL,
	type            text NOT NULL,
	aggregate_id    uuid NOT NULL,
	actor           text NOT NULL,
	status          text NOT NULL CHECK (status IN ('pending','accepted','rejected','projected','failed')),
	code            text,
	reason          text,
	version         bigint,
	idempotency_key text,
	request_hash    bytea,
	submitted_at    timestamptz NOT NULL DEFAULT now(),
	decided_at      timestamptz,
	projected_at    timestamptz
);
CREATE UNIQUE INDEX commands_idempotency ON strata.commands (actor, idempotency_key)
	WHERE idempotency_key IS NOT NULL;
CREATE INDEX commands_aggregate ON strata.commands (aggregate_id);
`

func journalSchema(s string) string {
	q := pgx.Identifier{s}.Sanitize()
	return fmt.Sprintf(`
CREATE SCHEMA IF NOT EXISTS %[1]s;
CREATE TABLE %[1]s.events (
	position       bigserial PRIMARY KEY,
	event_id       uuid NOT NULL UNIQUE,
	aggregate_type text NOT NULL,
	aggregate_id   uuid NOT NULL,
	version        bigint NOT NULL CHECK (version > 0),
	type           text NOT NULL,
	data           jsonb NOT NULL,
	metadata       jsonb NOT NULL,
	occurred_at    timestamptz NOT NULL,
	prev_hash      bytea NOT NULL,
	hash           bytea NOT NULL,
	published_at   timestamptz,
	UNIQUE (aggregate_id, version)
);
CREATE INDEX events_unpublished ON %[1]s.events (position) WHERE published_at IS NULL;
CREATE TABLE %[1]s.unique_keys (
	scope        text NOT NULL,
	key          text NOT NULL,
	aggregate_id uuid NOT NULL,
	PRIMARY KEY (scope, key)
);
`, q)
}

// outboxSchema makes the journal append-only. Its rows used to be marked
// published in place, an update of the whole row that could never be HOT
// (published_at was in the partial index's predicate), so every mark wrote
// a new row version and an entry in each of the table's three other
// indexes: 14-20 µs a row in the relay bench, 35-44 µs at full e2e load,
// the second costliest statement of a command. The outbox holds the
// positions not yet on Kafka; the relay deletes them once Kafka has
// acknowledged. Journal rows are never written again once committed, which
// is what an audit of the hash chain wants of them too.
//
// A statement trigger fills the outbox, so every insert into the journal
// lists its rows whoever wrote it: a worker of the release before this
// one, still running while the migration commits, keeps its events
// published. The lock waits for inserts in flight and holds new ones back
// until the rows still unpublished have moved over.
func outboxSchema(s string) string {
	q := pgx.Identifier{s}.Sanitize()
	return fmt.Sprintf(`
LOCK TABLE %[1]s.events IN SHARE ROW EXCLUSIVE MODE;
CREATE TABLE %[1]s.outbox (position bigint PRIMARY KEY);
CREATE FUNCTION %[1]s.outbox_append() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO %[1]s.outbox (position) SELECT position FROM appended;
	RETURN NULL;
END $$;
CREATE TRIGGER outbox_append AFTER INSERT ON %[1]s.events REFERENCING NEW TABLE AS appended
	FOR EACH STATEMENT EXECUTE FUNCTION %[1]s.outbox_append();
INSERT INTO %[1]s.outbox (position) SELECT position FROM %[1]s.events WHERE published_at IS NULL;
DROP INDEX %[1]s.events_unpublished;
ALTER TABLE %[1]s.events DROP COLUMN published_at;
`, q)
}

// secretsSchema holds secrets (password hashes) outside the journal: they
// are never events and never reach Kafka.
func secretsSchema(s string) string {
	q := pgx.Identifier{s}.Sanitize()
	return fmt.Sprintf(`
CREATE TABLE %[1]s.staged_secrets (
	command_id uuid PRIMARY KEY,
	kind       text NOT NULL,
	value      bytea NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE %[1]s.secrets (
	aggregate_id uuid NOT NULL,
	kind         text NOT NULL,
	value        bytea NOT NULL,
	updated_at   timestamptz NOT NULL,
	PRIMARY KEY (aggregate_id, kind)
);
`, q)
}

// Journal reads and appends one service's events. Its methods run inside
// the caller's transaction, so events, unique keys and command results
// commit together.
type Journal struct {
	service string
	schema  string // sanitized identifier
	reg     *Registry
}

// NewJournal returns the journal of a service.
func NewJournal(service string, reg *Registry) *Journal {
	return &Journal{service: service, schema: pgx.Identifier{service}.Sanitize(), reg: reg}
}

// Aggregate is an aggregate as loaded from the journal.
type Aggregate struct {
	Def      *aggregates.Definition
	ID       string
	State    any
	Version  int64
	LastHash []byte
}

// ErrWrongType is returned by Load when the id belongs to an aggregate of
// another type.
var ErrWrongType = errors.New("journal: aggregate has another type")

// Load folds an aggregate's events into its state. A missing aggregate has
// version 0 and the zero state.
func (j *Journal) Load(ctx context.Context, q Querier, def *aggregates.Definition, id string) (*Aggregate, error) {
	rows, err := q.Query(ctx, `SELECT aggregate_type, version, type, data, hash FROM `+j.schema+
		`.events WHERE aggregate_id = $1 ORDER BY version`, id)
	if err != nil {
		return nil, fmt.Errorf("journal load %s: %w", id, err)
	}
	defer rows.Close()
	a := &Aggregate{Def: def, ID: id, State: def.New(), LastHash: GenesisHash}
	for rows.Next() {
		var typ, etype string
		var data []byte
		if err := rows.Scan(&typ, &a.Version, &etype, &data, &a.LastHash); err != nil {
			return nil, err
		}
		if typ != def.Type {
			return nil, ErrWrongType
		}
		e, err := def.DecodeEvent(etype, data)
		if err != nil {
			return nil, fmt.Errorf("journal load %s v%d: %w", id, a.Version, err)
		}
		a.State = def.Evolve(a.State, e)
	}
	return a, rows.Err()
}

// Append writes events after a.Version, chaining their hashes, and claims
// and releases the unique keys that the new state gains and loses. A key
// held by another aggregate returns a *aggregates.Rejection with the key's
// code; the caller must then roll back to a savepoint. It returns the
// written rows and updates a in place.
func (j *Journal) Append(ctx context.Context, tx pgx.Tx, a *Aggregate, events []aggregates.Event, meta Metadata, now time.Time) ([]JournalEvent, error) {
	p, err := plan(a, events, meta, now)
	if err != nil {
		return nil, err
	}
	if err := j.moveKeys(ctx, tx, a.ID, p.before, p.after); err != nil {
		return nil, err
	}
	if err := j.insertEvents(ctx, tx, p.rows); err != nil {
		return nil, fmt.Errorf("journal append %s: %w", a.ID, err)
	}
	p.apply(a)
	return p.rows, nil
}

// appendPlan is what appending events to an aggregate will write: the rows
// with their hash chain, the unique keys before and after, the new state.
type appendPlan struct {
	rows          []JournalEvent
	before, after []aggregates.UniqueKey
	state         any
}

// plan computes an append without touching the database.
func plan(a *Aggregate, events []aggregates.Event, meta Metadata, now time.Time) (*appendPlan, error) {
	p := &appendPlan{before: a.Def.Keys(a.State), state: a.State, rows: make([]JournalEvent, len(events))}
	prev := a.LastHash
	at := now.UTC().Truncate(time.Microsecond)
	for i, e := range events {
		p.state = a.Def.Evolve(p.state, e)
		data, err := CanonicalJSONOf(e)
		if err != nil {
			return nil, err
		}
		r := JournalEvent{
			EventID:       NewID(),
			AggregateType: a.Def.Type,
			AggregateID:   a.ID,
			Version:       a.Version + int64(i) + 1,
			Type:          a.Def.QualifiedEvent(e),
			Data:          data,
			Metadata:      meta,
			OccurredAt:    at,
			PrevHash:      prev,
			canonicalData: true,
		}
		if r.Hash, err = r.ComputeHash(); err != nil {
			return nil, err
		}
		prev = r.Hash
		p.rows[i] = r
	}
	p.after = a.Def.Keys(p.state)
	return p, nil
}

// apply moves a past the planned events.
func (p *appendPlan) apply(a *Aggregate) {
	if n := len(p.rows); n > 0 {
		a.Version, a.LastHash = p.rows[n-1].Version, p.rows[n-1].Hash
	}
	a.State = p.state
}

// insertEventsSQL inserts any number of journal rows in one statement; the
// outbox_append trigger lists them in the outbox for the relay.
func insertEventsSQL(schema string) string {
	return `INSERT INTO ` + schema + `.events
	(event_id, aggregate_type, aggregate_id, version, type, data, metadata, occurred_at, prev_hash, hash)
	SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::bigint[], $5::text[], $6::jsonb[], $7::jsonb[],
		$8::timestamptz[], $9::bytea[], $10::bytea[])`
}

// insertEvents writes rows in one round trip.
func (j *Journal) insertEvents(ctx context.Context, q Querier, rows []JournalEvent) error {
	if len(rows) == 0 {
		return nil
	}
	_, err := q.Exec(ctx, insertEventsSQL(j.schema), eventColumns(rows)...)
	return err
}

// eventColumns turns rows into the column arrays of insertEventsSQL.
func eventColumns(rows []JournalEvent) []any {
	n := len(rows)
	ids, types, aggs, etypes := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	versions, at := make([]int64, n), make([]time.Time, n)
	data, meta, prev, hash := make([]string, n), make([]string, n), make([][]byte, n), make([][]byte, n)
	for i, r := range rows {
		m, _ := json.Marshal(r.Metadata)
		ids[i], types[i], aggs[i], versions[i], etypes[i] = r.EventID, r.AggregateType, r.AggregateID, r.Version, r.Type
		data[i], meta[i], at[i], prev[i], hash[i] = string(r.Data), string(m), r.OccurredAt, r.PrevHash, r.Hash
	}
	return []any{ids, types, aggs, versions, etypes, data, meta, at, prev, hash}
}

// moveKeys releases keys in before but not in after, then claims keys in
// after but not in before.
func (j *Journal) moveKeys(ctx context.Context, tx pgx.Tx, id string, before, after []aggregates.UniqueKey) error {
	for _, k := range before {
		if !containsKey(after, k) {
			if _, err := tx.Exec(ctx, `DELETE FROM `+j.schema+`.unique_keys WHERE scope=$1 AND key=$2 AND aggregate_id=$3`,
				k.Scope, k.Key, id); err != nil {
				return fmt.Errorf("journal release key: %w", err)
			}
		}
	}
	for _, k := range after {
		if containsKey(before, k) {
			continue
		}
		tag, err := tx.Exec(ctx, `INSERT INTO `+j.schema+`.unique_keys (scope, key, aggregate_id) VALUES ($1,$2,$3)
			ON CONFLICT (scope, key) DO NOTHING`, k.Scope, k.Key, id)
		if err != nil {
			return fmt.Errorf("journal claim key: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return aggregates.Reject(k.Code, "%s %q is already taken", k.Scope, k.Key)
		}
	}
	return nil
}

func containsKey(keys []aggregates.UniqueKey, k aggregates.UniqueKey) bool {
	for _, x := range keys {
		if x.Scope == k.Scope && x.Key == k.Key {
			return true
		}
	}
	return false
}

// CanonicalJSONOf marshals v and canonicalizes the result.
func CanonicalJSONOf(v any) ([]byte, error) {
	if b, ok := canonicalFlat(v); ok {
		return b, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return CanonicalJSON(b)
}

// IsUniqueViolation reports whether err is a Postgres unique violation,
// which on the events table means a concurrent writer won the version.
func IsUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505"
}

// History returns all events of one aggregate in version order, for audit.
func (j *Journal) History(ctx context.Context, q Querier, id string) ([]JournalEvent, error) {
	rows, err := q.Query(ctx, `SELECT `+JournalColumns+` FROM `+j.schema+`.events WHERE aggregate_id=$1 ORDER BY version`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, ScanJournalEvent)
}

// JournalColumns are the columns of an events row that ScanJournalEvent
// reads, in its order. The metadata comes as four text columns: Postgres
// takes them out of the jsonb for less than decoding its JSON here cost
// the relay (a tenth of its CPU).
const JournalColumns = `position, event_id, aggregate_type, aggregate_id, version, type, data,
	coalesce(metadata->>'command_id', ''), coalesce(metadata->>'correlation_id', ''),
	coalesce(metadata->>'causation_id', ''), coalesce(metadata->>'actor', ''), occurred_at, prev_hash, hash`

// ScanJournalEvent scans a row of JournalColumns.
func ScanJournalEvent(row pgx.CollectableRow) (JournalEvent, error) {
	var e JournalEvent
	var data []byte
	m := &e.Metadata
	err := row.Scan(&e.Position, &e.EventID, &e.AggregateType, &e.AggregateID, &e.Version, &e.Type, &data,
		&m.CommandID, &m.CorrelationID, &m.CausationID, &m.Actor, &e.OccurredAt, &e.PrevHash, &e.Hash)
	e.Data = data
	return e, err
}

// CodeMissingSecret rejects a secret-bearing command whose secret was never
// staged (it did not come through the gateway).
const CodeMissingSecret = "missing_secret"

// StageSecret records a command's secret until the worker decides it,
// replacing one staged before for the same command. It runs in the
// gateway's transaction with the pending row.
func StageSecret(ctx context.Context, q Querier, service, commandID, kind string, value []byte) error {
	_, err := q.Exec(ctx, `INSERT INTO `+pgx.Identifier{service}.Sanitize()+`.staged_secrets (command_id, kind, value)
		VALUES ($1,$2,$3) ON CONFLICT (command_id) DO UPDATE SET kind = EXCLUDED.kind, value = EXCLUDED.value`,
		commandID, kind, value)
	return err
}

// claimSecret moves a staged secret onto the aggregate.
func (j *Journal) claimSecret(ctx context.Context, tx pgx.Tx, commandID, aggregateID, kind string) error {
	tag, err := tx.Exec(ctx, `INSERT INTO `+j.schema+`.secrets (aggregate_id, kind, value, updated_at)
		SELECT $2, kind, value, now() FROM `+j.schema+`.staged_secrets WHERE command_id=$1 AND kind=$3
		ON CONFLICT (aggregate_id, kind) DO UPDATE SET value=EXCLUDED.value, updated_at=EXCLUDED.updated_at`,
		commandID, aggregateID, kind)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return aggregates.Reject(CodeMissingSecret, "no %s was staged for this command", kind)
	}
	return j.dropSecret(ctx, tx, commandID)
}

// dropSecret discards a staged secret.
func (j *Journal) dropSecret(ctx context.Context, q Querier, commandID string) error {
	_, err := q.Exec(ctx, `DELETE FROM `+j.schema+`.staged_secrets WHERE command_id=$1`, commandID)
	return err
}

// Secret returns an aggregate's secret of a kind, or ErrNotFound.
func (j *Journal) Secret(ctx context.Context, q Querier, aggregateID, kind string) ([]byte, error) {
	var v []byte
	err := q.QueryRow(ctx, `SELECT value FROM `+j.schema+`.secrets WHERE aggregate_id=$1 AND kind=$2`,
		aggregateID, kind).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return v, err
}
