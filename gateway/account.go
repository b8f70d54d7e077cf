package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	domain "github.com/strata-cqrs/strata/aggregates/account"
	"github.com/strata-cqrs/strata/projections"
	accountread "github.com/strata-cqrs/strata/projections/account"
)

// AccountQueries reads the account read models; accountread.Store
// implements it.
type AccountQueries interface {
	Account(ctx context.Context, id string) (accountread.Account, error)
	Accounts(ctx context.Context, f accountread.AccountFilter) ([]accountread.Account, error)
	Ledger(ctx context.Context, accountID string, afterVersion int64, limit int) ([]accountread.LedgerEntry, error)
	Transfer(ctx context.Context, id string) (accountread.Transfer, error)
	Transfers(ctx context.Context, f accountread.TransferFilter) ([]accountread.Transfer, error)
	PayPlan(ctx context.Context, id string) (accountread.PayPlan, error)
	PayPlans(ctx context.Context, p projections.ListParams) ([]accountread.PayPlan, error)
	MessageTemplate(ctx context.Context, id string) (accountread.MessageTemplate, error)
	MessageTemplates(ctx context.Context, p projections.ListParams) ([]accountread.MessageTemplate, error)
	MessageGroup(ctx context.Context, id string) (accountread.MessageGroup, error)
	MessageGroups(ctx context.Context, p projections.ListParams) ([]accountread.MessageGroup, error)
	Messages(ctx context.Context, groupID string, after accountread.MessageCursor, limit int) ([]accountread.Message, error)
}

// versioned adapts a read-model getter to the (resource, version) form
// the write and read helpers take.
func versioned[T any](fetch func(context.Context, string) (T, error), version func(T) int64) func(context.Context, string) (any, int64, error) {
	return func(ctx context.Context, id string) (any, int64, error) {
		v, err := fetch(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		return v, version(v), nil
	}
}

// typed is versioned for the typed get handler.
func typed[T any](fetch func(context.Context, string) (T, error), version func(T) int64) func(context.Context, string) (T, int64, error) {
	return func(ctx context.Context, id string) (T, int64, error) {
		v, err := fetch(ctx, id)
		return v, version(v), err
	}
}

func (g *Gateway) accountRoutes() {
	q := g.cfg.Accounts
	account := versioned(g.visibleAccount, func(a accountread.Account) int64 { return a.Version })
	transfer := versioned(g.visibleTransfer, func(t accountread.Transfer) int64 { return t.Version })
	plan := versioned(q.PayPlan, func(p accountread.PayPlan) int64 { return p.Version })
	template := versioned(q.MessageTemplate, func(t accountread.MessageTemplate) int64 { return t.Version })
	group := versioned(q.MessageGroup, func(m accountread.MessageGroup) int64 { return m.Version })
	// An account action: the owner's or, with accounts:write:any, anyone's.
	// The aggregate enforces it; the read model, once it has the account,
	// answers a stranger at once.
	action := func(typ string, body bool) write {
		return write{Type: typ, Body: body, Read: account, Guard: g.ownAccount}
	}

	g.handle(http.MethodPost, "/accounts", "accounts:write", g.submit(write{
		Type: "account.OpenAssetAccount", Creates: true, Body: true, Read: account, Path: "/accounts", Guard: ownerIsCaller}))
	g.handle(http.MethodGet, "/accounts", "accounts:read", g.listAccounts)
	g.handle(http.MethodGet, "/accounts/{id}", "accounts:read",
		get(g, typed(g.visibleAccount, func(a accountread.Account) int64 { return a.Version })))
	g.handle(http.MethodPost, "/accounts/{id}/deposits", "accounts:write", g.submit(action("account.Deposit", true)))
	g.handle(http.MethodPost, "/accounts/{id}/withdrawals", "accounts:write", g.submit(action("account.Withdraw", true)))
	g.handle(http.MethodPost, "/accounts/{id}/freeze", domain.GrantWriteAny, g.submit(write{
		Type: "account.FreezeAccount", Body: true, Optional: true, Read: account}))
	g.handle(http.MethodPost, "/accounts/{id}/unfreeze", domain.GrantWriteAny, g.submit(write{Type: "account.UnfreezeAccount", Read: account}))
	g.handle(http.MethodPost, "/accounts/{id}/close", "accounts:write", g.submit(action("account.CloseAccount", false)))
	g.handle(http.MethodPost, "/accounts/{id}/pay-plan", "accounts:write", g.submit(action("account.ChangePayPlan", true)))
	g.handle(http.MethodGet, "/accounts/{id}/ledger", "accounts:read", g.ledger)

	g.handle(http.MethodPost, "/transfers", "accounts:write", g.submit(write{
		Type: "account.TransferFunds", Creates: true, Body: true, Read: transfer, Path: "/transfers"}))
	g.handle(http.MethodGet, "/transfers", "accounts:read", g.listTransfers)
	g.handle(http.MethodGet, "/transfers/{id}", "accounts:read",
		get(g, typed(g.visibleTransfer, func(t accountread.Transfer) int64 { return t.Version })))

	g.handle(http.MethodPost, "/pay-plans", "payplans:write", g.submit(write{
		Type: "account.CreatePayPlan", Creates: true, Body: true, Read: plan, Path: "/pay-plans"}))
	g.handle(http.MethodGet, "/pay-plans", "payplans:read",
		list(g, "name", q.PayPlans, func(p accountread.PayPlan) string { return p.ID }))
	g.handle(http.MethodGet, "/pay-plans/{id}", "payplans:read", get(g, typed(q.PayPlan, func(p accountread.PayPlan) int64 { return p.Version })))
	g.handle(http.MethodPost, "/pay-plans/{id}/price", "payplans:write", g.submit(write{Type: "account.ChangePayPlanPrice", Body: true, Read: plan}))
	g.handle(http.MethodPost, "/pay-plans/{id}/retire", "payplans:write", g.submit(write{Type: "account.RetirePayPlan", Read: plan}))

	g.handle(http.MethodPost, "/message-templates", "messages:write", g.submit(write{
		Type: "account.CreateMessageTemplate", Creates: true, Body: true, Read: template, Path: "/message-templates"}))
	g.handle(http.MethodGet, "/message-templates", "messages:read",
		list(g, "name", q.MessageTemplates, func(t accountread.MessageTemplate) string { return t.ID }))
	g.handle(http.MethodGet, "/message-templates/{id}", "messages:read",
		get(g, typed(q.MessageTemplate, func(t accountread.MessageTemplate) int64 { return t.Version })))
	g.handle(http.MethodPut, "/message-templates/{id}", "messages:write", g.submit(write{Type: "account.UpdateMessageTemplate", Body: true, Read: template}))
	g.handle(http.MethodDelete, "/message-templates/{id}", "messages:write", g.submit(write{Type: "account.DeleteMessageTemplate"}))

	g.handle(http.MethodPost, "/message-groups", "messages:write", g.submit(write{
		Type: "account.CreateMessageGroup", Creates: true, Body: true, Read: group, Path: "/message-groups"}))
	g.handle(http.MethodGet, "/message-groups", "messages:read",
		list(g, "name", q.MessageGroups, func(m accountread.MessageGroup) string { return m.ID }))
	g.handle(http.MethodGet, "/message-groups/{id}", "messages:read",
		get(g, typed(q.MessageGroup, func(m accountread.MessageGroup) int64 { return m.Version })))
	g.handle(http.MethodPost, "/message-groups/{id}/members", "messages:write", g.submit(write{Type: "account.AddGroupMember", Body: true, Read: group}))
	g.handle(http.MethodDelete, "/message-groups/{id}/members/{user_id}", "messages:write", g.submit(write{
		Type: "account.RemoveGroupMember", FromPath: map[string]string{"user_id": "user_id"}, Read: group}))
	g.handle(http.MethodPost, "/message-groups/{id}/messages", "messages:write", g.submit(write{Type: "account.SendGroupMessage", Body: true, Read: group}))
	g.handle(http.MethodGet, "/message-groups/{id}/messages", "messages:read", g.groupMessages)
}

// canSee reports whether the caller may read what owner owns.
func canSee(ctx context.Context, owners ...string) bool {
	p, ok := principalFrom(ctx)
	if !ok {
		return false
	}
	if p.Can(domain.GrantReadAny) {
		return true
	}
	for _, o := range owners {
		if o != "" && o == p.UserID {
			return true
		}
	}
	return false
}

// visibleAccount returns an account its caller may see; any other is
// not found, so a stranger cannot learn which ids exist.
func (g *Gateway) visibleAccount(ctx context.Context, id string) (accountread.Account, error) {
	a, err := g.cfg.Accounts.Account(ctx, id)
	if err == nil && !canSee(ctx, a.OwnerUserID) {
		return accountread.Account{}, projections.ErrNotFound
	}
	return a, err
}

// visibleTransfer returns a transfer touching one of the caller's
// accounts, or any with accounts:read:any.
func (g *Gateway) visibleTransfer(ctx context.Context, id string) (accountread.Transfer, error) {
	t, err := g.cfg.Accounts.Transfer(ctx, id)
	if err == nil && !canSee(ctx, t.FromOwner, t.ToOwner) {
		return accountread.Transfer{}, projections.ErrNotFound
	}
	return t, err
}

// ownerIsCaller refuses opening an account for someone else without
// accounts:write:any.
func ownerIsCaller(_ context.Context, p *Principal, _ string, payload map[string]json.RawMessage) (string, string) {
	var owner string
	if json.Unmarshal(payload["owner_user_id"], &owner) != nil || owner == p.UserID || p.Can(domain.GrantWriteAny) {
		return "", "" // a malformed owner is the schema's to report
	}
	return codeForbidden, "opening an account for another user needs " + domain.GrantWriteAny
}

// ownAccount answers not_found for an account the read model knows to be
// someone else's; an account it does not know yet goes on to the
// aggregate, which decides with the owner it holds.
func (g *Gateway) ownAccount(ctx context.Context, p *Principal, id string, _ map[string]json.RawMessage) (string, string) {
	if p.Can(domain.GrantWriteAny) {
		return "", ""
	}
	a, err := g.cfg.Accounts.Account(ctx, id)
	if err == nil && a.OwnerUserID != p.UserID {
		return "not_found", "no resource has this id"
	}
	return "", ""
}

func (g *Gateway) listAccounts(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	owner := r.URL.Query().Get("owner_user_id")
	if !p.Can(domain.GrantReadAny) {
		if owner != "" && owner != p.UserID {
			writeProblem(w, r, codeForbidden, "listing another user's accounts needs "+domain.GrantReadAny)
			return
		}
		owner = p.UserID
	}
	if owner != "" && !isUUID(owner) {
		writeProblem(w, r, codeBadQuery, "owner_user_id must be a UUID")
		return
	}
	status := r.URL.Query().Get("status")
	if status != "" && status != domain.StatusOpen && status != domain.StatusFrozen && status != domain.StatusClosed {
		writeProblem(w, r, codeBadQuery, "status must be open, frozen or closed")
		return
	}
	asset := r.URL.Query().Get("asset")
	list(g, "", func(ctx context.Context, lp projections.ListParams) ([]accountread.Account, error) {
		return g.cfg.Accounts.Accounts(ctx, accountread.AccountFilter{ListParams: lp, Owner: owner, Asset: asset, Status: status})
	}, func(a accountread.Account) string { return a.ID })(w, r)
}

func (g *Gateway) listTransfers(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	f := accountread.TransferFilter{Account: r.URL.Query().Get("account_id")}
	if f.Account != "" && !isUUID(f.Account) {
		writeProblem(w, r, codeBadQuery, "account_id must be a UUID")
		return
	}
	if !p.Can(domain.GrantReadAny) {
		f.Owner = p.UserID
	}
	list(g, "", func(ctx context.Context, lp projections.ListParams) ([]accountread.Transfer, error) {
		f.ListParams = lp
		return g.cfg.Accounts.Transfers(ctx, f)
	}, func(t accountread.Transfer) string { return t.ID })(w, r)
}

// ledger pages an account's entries by event version.
func (g *Gateway) ledger(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if !found(g, w, r, id, g.visibleAccount) {
		return
	}
	var after int64
	limit, cursor, bad := pageOf(r)
	if bad == "" && cursor != "" {
		var err error
		if after, err = strconv.ParseInt(cursor, 10, 64); err != nil || after < 0 {
			bad = "cursor is not one this API returned"
		}
	}
	if bad != "" {
		writeProblem(w, r, codeBadQuery, bad)
		return
	}
	items, err := g.cfg.Accounts.Ledger(r.Context(), id, after, limit+1)
	if err != nil {
		g.internal(w, r, err)
		return
	}
	writePage(w, items, limit, func(e accountread.LedgerEntry) string { return strconv.FormatInt(e.EventVersion, 10) })
}

// groupMessages pages a group's delivery log.
func (g *Gateway) groupMessages(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if !found(g, w, r, id, g.cfg.Accounts.MessageGroup) {
		return
	}
	var after accountread.MessageCursor
	limit, cursor, bad := pageOf(r)
	if bad == "" && cursor != "" {
		v, pos, ok := strings.Cut(cursor, ".")
		var err1, err2 error
		after.Version, err1 = strconv.ParseInt(v, 10, 64)
		after.Position, err2 = strconv.Atoi(pos)
		if !ok || err1 != nil || err2 != nil {
			bad = "cursor is not one this API returned"
		}
	}
	if bad != "" {
		writeProblem(w, r, codeBadQuery, bad)
		return
	}
	items, err := g.cfg.Accounts.Messages(r.Context(), id, after, limit+1)
	if err != nil {
		g.internal(w, r, err)
		return
	}
	writePage(w, items, limit, func(m accountread.Message) string {
		return strconv.FormatInt(m.SendVersion, 10) + "." + strconv.Itoa(m.Position)
	})
}

// found answers 404 (or 500) and returns false unless fetch finds id.
func found[T any](g *Gateway, w http.ResponseWriter, r *http.Request, id string, fetch func(context.Context, string) (T, error)) bool {
	if !isUUID(id) {
		writeProblem(w, r, "not_found", "no resource has this id")
		return false
	}
	_, err := fetch(r.Context(), id)
	if errors.Is(err, projections.ErrNotFound) {
		writeProblem(w, r, "not_found", "no resource has this id")
		return false
	}
	if err != nil {
		g.internal(w, r, err)
		return false
	}
	return true
}

// pageOf parses limit (clamped) and the raw cursor of a list whose cursor
// is not an id.
func pageOf(r *http.Request) (limit int, cursor, bad string) {
	if limit, bad = parseLimit(r); bad != "" {
		return 0, "", bad
	}
	cursor, bad = parseCursor(r)
	return limit, cursor, bad
}
