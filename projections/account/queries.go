package account

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-cqrs/strata/projections"
)

// ErrNotFound is returned by Get methods when no row has the id.
var ErrNotFound = projections.ErrNotFound

// Account is the read model of an asset account. Balance is a decimal
// string without trailing zeros ("100", "0.5").
type Account struct {
	ID          string    `json:"id"`
	OwnerUserID string    `json:"owner_user_id"`
	OwnerName   *string   `json:"owner_name"`
	Asset       string    `json:"asset"`
	Name        string    `json:"name"`
	Balance     string    `json:"balance"`
	Status      string    `json:"status"`
	PayPlanID   *string   `json:"pay_plan_id"`
	Version     int64     `json:"version"`
	OpenedAt    time.Time `json:"opened_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// LedgerEntry is one balance change of an account. Amount is signed:
// credits positive, debits negative.
type LedgerEntry struct {
	AccountID      string    `json:"account_id"`
	EventVersion   int64     `json:"event_version"`
	Kind           string    `json:"kind"`
	Amount         string    `json:"amount"`
	RunningBalance string    `json:"running_balance"`
	Reference      string    `json:"reference"`
	TransferID     *string   `json:"transfer_id"`
	OccurredAt     time.Time `json:"occurred_at"`
}

// Transfer is the read model of a transfer. FromOwner and ToOwner are the
// owners of its accounts ("" while an account is unknown to the read
// model), for the gateway's visibility check; they are not shown.
type Transfer struct {
	ID            string    `json:"id"`
	FromAccountID string    `json:"from_account_id"`
	ToAccountID   string    `json:"to_account_id"`
	Amount        string    `json:"amount"`
	Asset         string    `json:"asset"`
	Status        string    `json:"status"`
	Code          *string   `json:"code"`
	Reason        *string   `json:"reason"`
	Compensated   bool      `json:"compensated"`
	Version       int64     `json:"version"`
	RequestedAt   time.Time `json:"requested_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	FromOwner     string    `json:"-"`
	ToOwner       string    `json:"-"`
}

// PayPlan is the read model of a pay plan.
type PayPlan struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Price     string    `json:"price"`
	Currency  string    `json:"currency"`
	Interval  string    `json:"interval"`
	Features  []string  `json:"features"`
	Status    string    `json:"status"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MessageTemplate is the read model of a message template; a deleted
// template has none.
type MessageTemplate struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Channel      string    `json:"channel"`
	Subject      string    `json:"subject"`
	Body         string    `json:"body"`
	Placeholders []string  `json:"placeholders"`
	Version      int64     `json:"version"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Member is a member of a message group; Name is null while the user's
// registration is unknown to the read model.
type Member struct {
	UserID  string    `json:"user_id"`
	Name    *string   `json:"name"`
	AddedAt time.Time `json:"added_at"`
}

// MessageGroup is the read model of a message group with its members in
// the order they joined.
type MessageGroup struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Members     []Member  `json:"members"`
	Version     int64     `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Message is the delivery of one group send to one recipient.
type Message struct {
	ID              string    `json:"id"`
	GroupID         string    `json:"group_id"`
	SendVersion     int64     `json:"send_version"`
	Position        int       `json:"position"`
	TemplateID      string    `json:"template_id"`
	RecipientUserID string    `json:"recipient_user_id"`
	RecipientName   *string   `json:"recipient_name"`
	Channel         string    `json:"channel"`
	Subject         string    `json:"subject"`
	Body            string    `json:"body"`
	SentAt          time.Time `json:"sent_at"`
}

// AccountFilter pages and filters accounts; an empty field does not filter.
// ListParams.Name is not used.
type AccountFilter struct {
	projections.ListParams
	Owner, Asset, Status string
}

// TransferFilter pages and filters transfers: Account keeps those from or
// to the account, Owner those from or to an account of the user. An empty
// field does not filter. ListParams.Name is not used.
type TransferFilter struct {
	projections.ListParams
	Account, Owner string
}

// MessageCursor is a position in a group's delivery log: the messages after
// it are those of later sends, or of the same send at a later position.
// The zero cursor is before the first message.
type MessageCursor struct {
	Version  int64
	Position int
}

// Store answers queries on the account read models.
type Store struct{ pool *pgxpool.Pool }

// NewStore returns a store over pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// one returns the single row of a query, or ErrNotFound; an id that is not
// a UUID names nothing.
func one[T any](ctx context.Context, s *Store, id, sql string) (T, error) {
	var zero T
	if !isUUID(id) {
		return zero, ErrNotFound
	}
	p, err := projections.One[T](ctx, s.pool, sql, id)
	if err != nil {
		return zero, err
	}
	return *p, nil
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil
}

// anyNotUUID reports whether a non-empty id filter cannot match anything.
func anyNotUUID(ids ...string) bool {
	for _, id := range ids {
		if id != "" && !isUUID(id) {
			return true
		}
	}
	return false
}

// afterID is the paging condition on column col with the cursor in $1. The
// cast sees NULL, never an empty string, when there is no cursor.
func afterID(col string) string { return `($1 = '' OR ` + col + ` > NULLIF($1,'')::uuid)` }

const accountCols = `a.id::text, a.owner_user_id::text, u.name, a.asset, a.name, trim_scale(a.balance)::text,
	a.status, a.pay_plan_id::text, a.version, a.opened_at, a.updated_at
	FROM account_read.asset_accounts a LEFT JOIN account_read.users u ON u.id = a.owner_user_id`

// Account returns one account or ErrNotFound.
func (s *Store) Account(ctx context.Context, id string) (Account, error) {
	return one[Account](ctx, s, id, `SELECT `+accountCols+` WHERE a.id=$1`)
}

// Accounts lists accounts in id (creation) order.
func (s *Store) Accounts(ctx context.Context, f AccountFilter) ([]Account, error) {
	if anyNotUUID(f.Owner) {
		return nil, nil
	}
	return projections.Many[Account](ctx, s.pool, `SELECT `+accountCols+` WHERE `+afterID("a.id")+`
		AND ($2 = '' OR a.owner_user_id = NULLIF($2,'')::uuid) AND ($3 = '' OR a.asset = $3) AND ($4 = '' OR a.status = $4)
		ORDER BY a.id LIMIT $5`, f.After, f.Owner, f.Asset, f.Status, f.Limit)
}

// Ledger lists an account's entries after event version afterVersion, in
// version order. An unknown account has none.
func (s *Store) Ledger(ctx context.Context, accountID string, afterVersion int64, limit int) ([]LedgerEntry, error) {
	if !isUUID(accountID) {
		return nil, nil
	}
	return projections.Many[LedgerEntry](ctx, s.pool, `SELECT account_id::text, event_version, kind,
		trim_scale(amount)::text, trim_scale(running_balance)::text, reference, transfer_id::text, occurred_at
		FROM account_read.ledger_entries WHERE account_id=$1 AND event_version > $2
		ORDER BY event_version LIMIT $3`, accountID, afterVersion, limit)
}

const transferCols = `t.id::text, t.from_account_id::text, t.to_account_id::text, trim_scale(t.amount)::text,
	t.asset, t.status, t.code, t.reason, t.compensated, t.version, t.requested_at, t.updated_at,
	COALESCE(fa.owner_user_id::text, ''), COALESCE(ta.owner_user_id::text, '')
	FROM account_read.transfers t
	LEFT JOIN account_read.asset_accounts fa ON fa.id = t.from_account_id
	LEFT JOIN account_read.asset_accounts ta ON ta.id = t.to_account_id`

// Transfer returns one transfer or ErrNotFound.
func (s *Store) Transfer(ctx context.Context, id string) (Transfer, error) {
	return one[Transfer](ctx, s, id, `SELECT `+transferCols+` WHERE t.id=$1`)
}

// Transfers lists transfers in id (request) order.
func (s *Store) Transfers(ctx context.Context, f TransferFilter) ([]Transfer, error) {
	if anyNotUUID(f.Account, f.Owner) {
		return nil, nil
	}
	return projections.Many[Transfer](ctx, s.pool, `SELECT `+transferCols+` WHERE `+afterID("t.id")+`
		AND ($2 = '' OR NULLIF($2,'')::uuid IN (t.from_account_id, t.to_account_id))
		AND ($3 = '' OR NULLIF($3,'')::uuid IN (fa.owner_user_id, ta.owner_user_id))
		ORDER BY t.id LIMIT $4`, f.After, f.Account, f.Owner, f.Limit)
}

const payPlanCols = `p.id::text, p.name, trim_scale(p.price)::text, p.currency, p.billing_interval, p.features,
	p.status, p.version, p.created_at, p.updated_at FROM account_read.pay_plans p`

// PayPlan returns one pay plan, active or retired, or ErrNotFound.
func (s *Store) PayPlan(ctx context.Context, id string) (PayPlan, error) {
	return one[PayPlan](ctx, s, id, `SELECT `+payPlanCols+` WHERE p.id=$1`)
}

// PayPlans lists pay plans in id (creation) order; Name filters by exact
// name, ignoring case.
func (s *Store) PayPlans(ctx context.Context, p projections.ListParams) ([]PayPlan, error) {
	return projections.Many[PayPlan](ctx, s.pool, `SELECT `+payPlanCols+` WHERE `+afterID("p.id")+`
		AND ($2 = '' OR lower(p.name) = lower($2)) ORDER BY p.id LIMIT $3`, p.After, p.Name, p.Limit)
}

const templateCols = `t.id::text, t.name, t.channel, t.subject, t.body, t.placeholders, t.version,
	t.created_at, t.updated_at FROM account_read.message_templates t`

// MessageTemplate returns one template or ErrNotFound (also once deleted).
func (s *Store) MessageTemplate(ctx context.Context, id string) (MessageTemplate, error) {
	return one[MessageTemplate](ctx, s, id, `SELECT `+templateCols+` WHERE t.id=$1`)
}

// MessageTemplates lists templates in id (creation) order; Name filters by
// exact name, ignoring case.
func (s *Store) MessageTemplates(ctx context.Context, p projections.ListParams) ([]MessageTemplate, error) {
	return projections.Many[MessageTemplate](ctx, s.pool, `SELECT `+templateCols+` WHERE `+afterID("t.id")+`
		AND ($2 = '' OR lower(t.name) = lower($2)) ORDER BY t.id LIMIT $3`, p.After, p.Name, p.Limit)
}

const groupCols = `g.id::text, g.name, g.description,
	COALESCE((SELECT json_agg(json_build_object('user_id', m.user_id, 'name', u.name, 'added_at', m.added_at)
		ORDER BY m.added_version)
		FROM account_read.message_group_members m LEFT JOIN account_read.users u ON u.id = m.user_id
		WHERE m.group_id = g.id), '[]'::json),
	g.version, g.created_at, g.updated_at FROM account_read.message_groups g`

// MessageGroup returns one group with its members, or ErrNotFound.
func (s *Store) MessageGroup(ctx context.Context, id string) (MessageGroup, error) {
	return one[MessageGroup](ctx, s, id, `SELECT `+groupCols+` WHERE g.id=$1`)
}

// MessageGroups lists groups with their members in id (creation) order;
// Name filters by exact name, ignoring case.
func (s *Store) MessageGroups(ctx context.Context, p projections.ListParams) ([]MessageGroup, error) {
	return projections.Many[MessageGroup](ctx, s.pool, `SELECT `+groupCols+` WHERE `+afterID("g.id")+`
		AND ($2 = '' OR lower(g.name) = lower($2)) ORDER BY g.id LIMIT $3`, p.After, p.Name, p.Limit)
}

// Messages lists a group's deliveries after the cursor, in send and then
// recipient order. An unknown group has none.
func (s *Store) Messages(ctx context.Context, groupID string, after MessageCursor, limit int) ([]Message, error) {
	if !isUUID(groupID) {
		return nil, nil
	}
	return projections.Many[Message](ctx, s.pool, `SELECT m.id::text, m.group_id::text, m.send_version, m.position,
		m.template_id::text, m.recipient_user_id::text, u.name, m.channel, m.subject, m.body, m.sent_at
		FROM account_read.messages m LEFT JOIN account_read.users u ON u.id = m.recipient_user_id
		WHERE m.group_id=$1 AND (m.send_version, m.position) > ($2, $3)
		ORDER BY m.send_version, m.position LIMIT $4`, groupID, after.Version, after.Position, limit)
}

// TransferLag is how long the oldest transfer still requested has waited
// for the transfer process manager (0 when none waits): a transfer whose
// step keeps failing shows here, and /readyz reports it.
func (s *Store) TransferLag(ctx context.Context) (time.Duration, error) {
	var lag float64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(extract(epoch FROM now() - min(requested_at)), 0)
		FROM account_read.transfers WHERE status = 'requested'`).Scan(&lag)
	return time.Duration(lag * float64(time.Second)), err
}
