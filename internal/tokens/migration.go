package tokens

import (
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Migration returns the SQL that creates this package's tables in schema
// (creating the schema if needed): signing_keys, refresh_tokens and
// revoked_sessions. schema is quoted with pgx.Identifier, so any name is
// safe. The SQL holds several statements and is meant to run once, in one
// transaction, through the migration runner.
func Migration(schema string) string {
	s := pgx.Identifier{schema}.Sanitize()
	idx := func(name string) string { return pgx.Identifier{name}.Sanitize() }
	return fmt.Sprintf(`
CREATE SCHEMA IF NOT EXISTS %[1]s;

CREATE TABLE %[2]s (
	kid         text        PRIMARY KEY,
	private_key bytea       NOT NULL,
	public_key  bytea       NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE %[3]s (
	token_hash bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
	user_id    uuid        NOT NULL,
	family_id  uuid        NOT NULL,
	expires_at timestamptz NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	used_at    timestamptz,
	revoked_at timestamptz
);
CREATE INDEX %[5]s ON %[3]s (family_id);
CREATE INDEX %[6]s ON %[3]s (user_id);

CREATE TABLE %[4]s (
	family_id  uuid        PRIMARY KEY,
	user_id    uuid        NOT NULL,
	revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX %[7]s ON %[4]s (user_id, revoked_at);
`, s,
		table(schema, "signing_keys"),
		table(schema, "refresh_tokens"),
		table(schema, "revoked_sessions"),
		idx("refresh_tokens_family_id_idx"),
		idx("refresh_tokens_user_id_idx"),
		idx("revoked_sessions_user_id_idx"))
}
