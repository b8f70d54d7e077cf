// Package account holds the account service's read models (schema
// account_read): asset accounts with their ledgers, transfers, pay plans,
// message templates, message groups and the delivery log of group
// messages. It applies account events, and auth.user's UserRegistered for
// the names of owners and members, and answers the gateway's queries.
package account

import (
	"strconv"

	"github.com/google/uuid"

	domain "github.com/strata-cqrs/strata/aggregates/account"
	authdomain "github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/projections"
)

// Schema is the read schema of the account service.
const Schema = "account_read"

// Projection returns the account read-model projection. It reads auth.user
// only for display names; those events' commands are left to the auth
// projection to mark.
func Projection() *projections.Projection {
	return &projections.Projection{
		Name:   "account",
		Schema: Schema,
		Topics: []string{
			"account.asset-account", "account.transfer", "account.pay-plan",
			"account.message-template", "account.message-group", "auth.user",
		},
		Migrations:    []postgres.Migration{{Component: Schema, Version: 1, SQL: schemaV1}},
		Apply:         Apply,
		MarksCommands: true,
		Service:       domain.Service,
		// Every statement writes rows of the event's own aggregate (names
		// are joined when read, never copied across aggregates).
		Partitioned: true,
	}
}

// schemaV1 holds amounts as NUMERIC(38,8): every amount and balance the
// domain allows fits exactly. No table references another: the topics
// arrive in no mutual order (a transfer may be applied before its
// accounts, a member before the user's registration), so names and owners
// are joined when read.
const schemaV1 = `
CREATE TABLE account_read.users (
	id    uuid PRIMARY KEY,
	name  text NOT NULL,
	email text NOT NULL
);
CREATE TABLE account_read.asset_accounts (
	id            uuid PRIMARY KEY,
	owner_user_id uuid NOT NULL,
	asset         text NOT NULL,
	name          text NOT NULL,
	balance       numeric(38,8) NOT NULL CHECK (balance >= 0),
	status        text NOT NULL CHECK (status IN ('open','frozen','closed')),
	pay_plan_id   uuid,
	version       bigint NOT NULL,
	opened_at     timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL
);
CREATE INDEX asset_accounts_owner ON account_read.asset_accounts (owner_user_id, id);
CREATE TABLE account_read.ledger_entries (
	account_id      uuid NOT NULL,
	event_version   bigint NOT NULL,
	kind            text NOT NULL
		CHECK (kind IN ('deposit','withdrawal','transfer_debit','transfer_credit','transfer_reversal')),
	amount          numeric(38,8) NOT NULL,
	running_balance numeric(38,8) NOT NULL CHECK (running_balance >= 0),
	reference       text NOT NULL,
	transfer_id     uuid,
	occurred_at     timestamptz NOT NULL,
	PRIMARY KEY (account_id, event_version)
);
CREATE TABLE account_read.transfers (
	id              uuid PRIMARY KEY,
	from_account_id uuid NOT NULL,
	to_account_id   uuid NOT NULL,
	amount          numeric(38,8) NOT NULL,
	asset           text NOT NULL,
	status          text NOT NULL CHECK (status IN ('requested','completed','failed')),
	code            text,
	reason          text,
	compensated     boolean NOT NULL DEFAULT false,
	version         bigint NOT NULL,
	requested_at    timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL
);
CREATE INDEX transfers_from ON account_read.transfers (from_account_id, id);
CREATE INDEX transfers_to ON account_read.transfers (to_account_id, id);
CREATE INDEX transfers_requested ON account_read.transfers (requested_at) WHERE status = 'requested';
CREATE TABLE account_read.pay_plans (
	id               uuid PRIMARY KEY,
	name             text NOT NULL,
	price            numeric(38,8) NOT NULL,
	currency         text NOT NULL,
	billing_interval text NOT NULL,
	features         text[] NOT NULL,
	status           text NOT NULL CHECK (status IN ('active','retired')),
	version          bigint NOT NULL,
	created_at       timestamptz NOT NULL,
	updated_at       timestamptz NOT NULL
);
CREATE INDEX pay_plans_name ON account_read.pay_plans (lower(name));
CREATE TABLE account_read.message_templates (
	id           uuid PRIMARY KEY,
	name         text NOT NULL,
	channel      text NOT NULL,
	subject      text NOT NULL,
	body         text NOT NULL,
	placeholders text[] NOT NULL,
	version      bigint NOT NULL,
	created_at   timestamptz NOT NULL,
	updated_at   timestamptz NOT NULL
);
CREATE INDEX message_templates_name ON account_read.message_templates (lower(name));
CREATE TABLE account_read.message_groups (
	id          uuid PRIMARY KEY,
	name        text NOT NULL,
	description text NOT NULL,
	version     bigint NOT NULL,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL
);
CREATE INDEX message_groups_name ON account_read.message_groups (lower(name));
CREATE TABLE account_read.message_group_members (
	group_id      uuid NOT NULL,
	user_id       uuid NOT NULL,
	added_version bigint NOT NULL, -- the group's version that added the member: join order
	added_at      timestamptz NOT NULL,
	PRIMARY KEY (group_id, user_id)
);
CREATE TABLE account_read.messages (
	id                uuid PRIMARY KEY,
	group_id          uuid NOT NULL,
	send_version      bigint NOT NULL,
	position          integer NOT NULL,
	template_id       uuid NOT NULL,
	recipient_user_id uuid NOT NULL,
	channel           text NOT NULL,
	subject           text NOT NULL,
	body              text NOT NULL,
	sent_at           timestamptz NOT NULL,
	UNIQUE (group_id, send_version, position)
);
`

// Ledger entry kinds.
const (
	KindDeposit          = "deposit"
	KindWithdrawal       = "withdrawal"
	KindTransferDebit    = "transfer_debit"
	KindTransferCredit   = "transfer_credit"
	KindTransferReversal = "transfer_reversal"
)

// Apply queues the statements of one account (or auth.user) event on the
// projector's batch. Balances come from the events' balance fields (the
// balance after the event), never from adding amounts, and every insert
// ignores a row already there, so applying an event twice changes nothing.
func Apply(b *projections.Batch, e *projections.Event) error {
	id, v, at := e.AggregateID, e.Version, e.Time
	switch ev := e.Event.(type) {
	case authdomain.UserRegistered:
		b.Queue(`INSERT INTO account_read.users (id, name, email) VALUES ($1,$2,$3)
			ON CONFLICT (id) DO UPDATE SET name=EXCLUDED.name, email=EXCLUDED.email`, id, ev.Name, ev.Email)

	case domain.AssetAccountOpened:
		b.Queue(`INSERT INTO account_read.asset_accounts
			(id, owner_user_id, asset, name, balance, status, version, opened_at, updated_at)
			VALUES ($1,$2,$3,$4,0,'open',$5,$6,$6) ON CONFLICT (id) DO NOTHING`,
			id, ev.OwnerUserID, ev.Asset, ev.Name, v, at)
	case domain.FundsDeposited:
		ledger(b, e, pick(ev.TransferID, KindDeposit, KindTransferCredit), ev.Amount, ev.Balance, ev.Reference, ev.TransferID)
	case domain.FundsWithdrawn:
		ledger(b, e, pick(ev.TransferID, KindWithdrawal, KindTransferDebit), "-"+ev.Amount, ev.Balance, ev.Reference, ev.TransferID)
	case domain.TransferDebitReversed:
		ledger(b, e, KindTransferReversal, ev.Amount, ev.Balance, "transfer "+ev.TransferID, ev.TransferID)
	case domain.TransferSettled:
		touch(b, e, "asset_accounts", ``)
	case domain.AccountFrozen:
		touch(b, e, "asset_accounts", `status='frozen'`)
	case domain.AccountUnfrozen:
		touch(b, e, "asset_accounts", `status='open'`)
	case domain.AccountClosed:
		touch(b, e, "asset_accounts", `status='closed'`)
	case domain.PayPlanChanged:
		touch(b, e, "asset_accounts", `pay_plan_id=$4::uuid`, ev.PayPlanID)

	case domain.TransferRequested:
		b.Queue(`INSERT INTO account_read.transfers
			(id, from_account_id, to_account_id, amount, asset, status, version, requested_at, updated_at)
			VALUES ($1,$2,$3,$4::numeric,$5,'requested',$6,$7,$7) ON CONFLICT (id) DO NOTHING`,
			id, ev.FromAccountID, ev.ToAccountID, ev.Amount, ev.Asset, v, at)
	case domain.TransferCompleted:
		touch(b, e, "transfers", `status='completed'`)
	case domain.TransferFailed:
		touch(b, e, "transfers", `status='failed', code=$4, reason=$5, compensated=$6`, ev.Code, ev.Reason, ev.Compensated)

	case domain.PayPlanCreated:
		b.Queue(`INSERT INTO account_read.pay_plans
			(id, name, price, currency, billing_interval, features, status, version, created_at, updated_at)
			VALUES ($1,$2,$3::numeric,$4,$5,COALESCE($6::text[],'{}'),'active',$7,$8,$8) ON CONFLICT (id) DO NOTHING`,
			id, ev.Name, ev.Price, ev.Currency, ev.Interval, ev.Features, v, at)
	case domain.PayPlanPriceChanged:
		touch(b, e, "pay_plans", `price=$4::numeric`, ev.Price)
	case domain.PayPlanRetired:
		touch(b, e, "pay_plans", `status='retired'`)

	case domain.MessageTemplateCreated:
		b.Queue(`INSERT INTO account_read.message_templates
			(id, name, channel, subject, body, placeholders, version, created_at, updated_at)
			VALUES ($1,$2,$3,$4,$5,COALESCE($6::text[],'{}'),$7,$8,$8) ON CONFLICT (id) DO NOTHING`,
			id, ev.Name, ev.Channel, ev.Subject, ev.Body, ev.Placeholders, v, at)
	case domain.MessageTemplateUpdated:
		touch(b, e, "message_templates", `name=$4, subject=$5, body=$6, placeholders=COALESCE($7::text[],'{}')`,
			ev.Name, ev.Subject, ev.Body, ev.Placeholders)
	case domain.MessageTemplateDeleted:
		b.Queue(`DELETE FROM account_read.message_templates WHERE id=$1`, id)

	case domain.MessageGroupCreated:
		b.Queue(`INSERT INTO account_read.message_groups (id, name, description, version, created_at, updated_at)
			VALUES ($1,$2,$3,$4,$5,$5) ON CONFLICT (id) DO NOTHING`, id, ev.Name, ev.Description, v, at)
	case domain.GroupMemberAdded:
		touch(b, e, "message_groups", ``)
		b.Queue(`INSERT INTO account_read.message_group_members (group_id, user_id, added_version, added_at)
			VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING`, id, ev.UserID, v, at)
	case domain.GroupMemberRemoved:
		touch(b, e, "message_groups", ``)
		b.Queue(`DELETE FROM account_read.message_group_members WHERE group_id=$1 AND user_id=$2::uuid`, id, ev.UserID)
	case domain.GroupMessageSent:
		touch(b, e, "message_groups", ``)
		ids := make([]string, len(ev.Recipients))
		for i, r := range ev.Recipients {
			ids[i] = MessageID(id, v, r)
		}
		b.Queue(`INSERT INTO account_read.messages
			(id, group_id, send_version, position, template_id, recipient_user_id, channel, subject, body, sent_at)
			SELECT m.id, $1, $2, m.ord - 1, $3, m.recipient, $4, $5, $6, $7
			FROM unnest($8::uuid[], $9::uuid[]) WITH ORDINALITY AS m(id, recipient, ord)
			ON CONFLICT DO NOTHING`,
			id, v, ev.TemplateID, ev.Channel, ev.Subject, ev.Body, at, ids, ev.Recipients)
	}
	return nil
}

// pick returns plain when no transfer is named, else ofTransfer.
func pick(transferID, plain, ofTransfer string) string {
	if transferID == "" {
		return plain
	}
	return ofTransfer
}

// ledger records a balance change of an account: the entry, with its
// signed amount and the balance after it, and the account's new balance.
// Amounts are the events' decimal strings, cast to numeric by Postgres.
// The balance is the event's own, so only an account's last in a batch is
// written (projections.TouchFinal), and the entries of consecutive changes
// go out as multi-row inserts.
func ledger(b *projections.Batch, e *projections.Event, kind, signedAmount, balance, reference, transferID string) {
	projections.TouchFinal(b, e, "account_read.asset_accounts", `balance=$4::numeric`, balance)
	b.Queue(`INSERT INTO account_read.ledger_entries
		(account_id, event_version, kind, amount, running_balance, reference, transfer_id, occurred_at)
		VALUES ($1,$2,$3,$4::numeric,$5::numeric,$6,NULLIF($7,'')::uuid,$8) ON CONFLICT DO NOTHING`,
		e.AggregateID, e.Version, kind, signedAmount, balance, reference, transferID, e.Time)
}

// touch sets the version and update time of the event's row of table (see
// projections.Touch).
func touch(b *projections.Batch, e *projections.Event, table, set string, args ...any) {
	projections.Touch(b, e, "account_read."+table, set, args...)
}

// MessageNamespace is the UUID namespace of message ids.
var MessageNamespace = uuid.MustParse("da72f557-6587-4764-a7ec-d2fe52cc2aa2")

// MessageID is the id of the delivery of a group's send (the group's
// version that sent it) to one recipient: a UUIDv5 of
// "<group id>/<send version>/<recipient id>" in MessageNamespace, ids in
// their canonical lower-case form.
func MessageID(groupID string, sendVersion int64, recipientUserID string) string {
	return uuid.NewSHA1(MessageNamespace,
		[]byte(canonical(groupID)+"/"+strconv.FormatInt(sendVersion, 10)+"/"+canonical(recipientUserID))).String()
}

// canonical spells a UUID in lower-case hyphenated form; anything else is
// returned as is.
func canonical(id string) string {
	if u, err := uuid.Parse(id); err == nil {
		return u.String()
	}
	return id
}
