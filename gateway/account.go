package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/strata-cqrs/strata/aggregates"
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
	// Reads show the caller's own accounts and the transfers touching
	// them, or any with accounts:read:any. The answer to a write shows what
	// it changed to whoever was allowed to make it: also to a holder of
	// accounts:write:any without accounts:read:any, whose write is done by
	// then (a 500 would invite a retry that deposits twice).
	visibleAccount := seenWith(q.Account, accountOwner, domain.GrantReadAny)
	visibleTransfer := seenWith(q.Transfer, transferOwners, domain.GrantReadAny)
	account := versioned(seenWith(q.Account, accountOwner, domain.GrantReadAny, domain.GrantWriteAny),
		func(a accountread.Account) int64 { return a.Version })
	transfer := versioned(seenWith(q.Transfer, transferOwners, domain.GrantReadAny, domain.GrantWriteAny),
		func(t accountread.Transfer) int64 { return t.Version })
	// An account action: the owner's or, with accounts:write:any, anyone's.
	// The aggregate decides it, with the owner it holds: a stranger's
	// command is refused as not_found exactly like one to an id that does
	// not exist (202, then rejected), so no answer tells the two apart.
	action := func(typ string, body bool) write {
		return write{Type: typ, Body: body, Read: account}
	}

	g.handle(http.MethodPost, "/accounts", "accounts:write", g.submit(write{
		Type: "account.OpenAssetAccount", Creates: true, Body: true, Read: account, Path: "/accounts",
		Guard: guards(ownerIsCaller, g.knownUser("owner_user_id", "owner_not_found"))}))
	g.handle(http.MethodGet, "/accounts", "accounts:read", g.listAccounts)
	g.handle(http.MethodGet, "/accounts/{id}", "accounts:read",
		get(g, typed(visibleAccount, func(a accountread.Account) int64 { return a.Version })))
	g.handle(http.MethodPost, "/accounts/{id}/deposits", "accounts:write", g.submit(action("account.Deposit", true)))
	g.handle(http.MethodPost, "/accounts/{id}/withdrawals", "accounts:write", g.submit(action("account.Withdraw", true)))
	g.handle(http.MethodPost, "/accounts/{id}/freeze", domain.GrantWriteAny, g.submit(write{
		Type: "account.FreezeAccount", Body: true, Optional: true, Read: account}))
	g.handle(http.MethodPost, "/accounts/{id}/unfreeze", domain.GrantWriteAny, g.submit(write{Type: "account.UnfreezeAccount", Read: account}))
	g.handle(http.MethodPost, "/accounts/{id}/close", "accounts:write", g.submit(action("account.CloseAccount", false)))
	g.handle(http.MethodPost, "/accounts/{id}/pay-plan", "accounts:write", g.submit(action("account.ChangePayPlan", true)))
	g.handle(http.MethodGet, "/accounts/{id}/ledger", "accounts:read",
		pagedChild(g, visibleAccount, parseLedgerCursor, q.Ledger, ledgerCursor))

	g.handle(http.MethodPost, "/transfers", "accounts:write", g.submit(write{
		Type: "account.TransferFunds", Creates: true, Body: true, Read: transfer, Path: "/transfers",
		Then: func(id string) string { return domain.TransferStepID(id, domain.TransferFinishStep) },
		Failed: func(res any) (string, string) {
			if t, ok := res.(accountread.Transfer); ok && t.Status == domain.TransferStatusFailed && t.Code != nil {
				return *t.Code, "transfer " + t.ID + " failed: " + deref(t.Reason)
			}
			return "", ""
		}}))
	g.handle(http.MethodGet, "/transfers", "accounts:read", g.listTransfers)
	g.handle(http.MethodGet, "/transfers/{id}", "accounts:read",
		get(g, typed(visibleTransfer, func(t accountread.Transfer) int64 { return t.Version })))

	plan := collection(g, "/pay-plans", "payplans:read", "payplans:write", "account.CreatePayPlan", q.PayPlan, q.PayPlans,
		func(p accountread.PayPlan) string { return p.ID }, func(p accountread.PayPlan) int64 { return p.Version })
	g.handle(http.MethodPost, "/pay-plans/{id}/price", "payplans:write", g.submit(write{Type: "account.ChangePayPlanPrice", Body: true, Read: plan}))
	g.handle(http.MethodPost, "/pay-plans/{id}/retire", "payplans:write", g.submit(write{Type: "account.RetirePayPlan", Read: plan}))

	template := collection(g, "/message-templates", "messages:read", "messages:write", "account.CreateMessageTemplate", q.MessageTemplate, q.MessageTemplates,
		func(t accountread.MessageTemplate) string { return t.ID }, func(t accountread.MessageTemplate) int64 { return t.Version })
	g.handle(http.MethodPut, "/message-templates/{id}", "messages:write", g.submit(write{Type: "account.UpdateMessageTemplate", Body: true, Read: template}))
	g.handle(http.MethodDelete, "/message-templates/{id}", "messages:write", g.submit(write{Type: "account.DeleteMessageTemplate"}))

	group := collection(g, "/message-groups", "messages:read", "messages:write", "account.CreateMessageGroup", q.MessageGroup, q.MessageGroups,
		func(m accountread.MessageGroup) string { return m.ID }, func(m accountread.MessageGroup) int64 { return m.Version })
	g.handle(http.MethodPost, "/message-groups/{id}/members", "messages:write", g.submit(write{Type: "account.AddGroupMember", Body: true, Read: group,
		Guard: g.knownUser("user_id", "user_not_found")}))
	g.handle(http.MethodDelete, "/message-groups/{id}/members/{user_id}", "messages:write", g.submit(write{
		Type: "account.RemoveGroupMember", FromPath: map[string]string{"user_id": "user_id"}, Read: group}))
	g.handle(http.MethodPost, "/message-groups/{id}/messages", "messages:write", g.submit(write{Type: "account.SendGroupMessage", Body: true, Read: group}))
	g.handle(http.MethodGet, "/message-groups/{id}/messages", "messages:read",
		pagedChild(g, q.MessageGroup, parseMessageCursor, q.Messages, messageCursor))
}

// collection registers the routes every collection of named resources
// has: POST path creates one (with writePerm), GET path lists them by
// ?name= and GET path/{id} reads one (with readPerm). It returns the read
// the collection's other writes answer with.
func collection[T any](g *Gateway, path, readPerm, writePerm, create string, one func(context.Context, string) (T, error),
	all func(context.Context, projections.ListParams) ([]T, error), id func(T) string, version func(T) int64,
) func(context.Context, string) (any, int64, error) {
	read := versioned(one, version)
	g.handle(http.MethodPost, path, writePerm, g.submit(write{Type: create, Creates: true, Body: true, Read: read, Path: path}))
	g.handle(http.MethodGet, path, readPerm, list(g, "name", all, id))
	g.handle(http.MethodGet, path+"/{id}", readPerm, get(g, typed(one, version)))
	return read
}

// seenWith returns a getter of the resources a caller may see: those
// touching what the caller owns, or any with one of grants. Any other is
// not found, so a stranger cannot learn which ids exist.
func seenWith[T any](fetch func(context.Context, string) (T, error), owners func(T) []string,
	grants ...string) func(context.Context, string) (T, error) {
	return func(ctx context.Context, id string) (T, error) {
		v, err := fetch(ctx, id)
		if err == nil && !canSee(ctx, grants, owners(v)...) {
			var zero T
			return zero, projections.ErrNotFound
		}
		return v, err
	}
}

// canSee reports whether the caller owns one of owners or holds one of
// grants.
func canSee(ctx context.Context, grants []string, owners ...string) bool {
	p, ok := principalFrom(ctx)
	if !ok {
		return false
	}
	for _, gr := range grants {
		if p.Can(gr) {
			return true
		}
	}
	for _, o := range owners {
		if o != "" && strings.EqualFold(o, p.UserID) {
			return true
		}
	}
	return false
}

func accountOwner(a accountread.Account) []string    { return []string{a.OwnerUserID} }
func transferOwners(t accountread.Transfer) []string { return []string{t.FromOwner, t.ToOwner} }

// ownerIsCaller refuses opening an account for someone else without
// accounts:write:any.
func ownerIsCaller(_ context.Context, p *Principal, _ string, payload map[string]json.RawMessage) (string, string) {
	var owner string
	if json.Unmarshal(payload["owner_user_id"], &owner) != nil || strings.EqualFold(owner, p.UserID) || p.Can(domain.GrantWriteAny) {
		return "", "" // a malformed owner is the schema's to report
	}
	return codeForbidden, "opening an account for another user needs " + domain.GrantWriteAny
}

// knownUser refuses a user id (in the body's field) that names no
// registered user, so an account or a membership is never given to nobody.
// It asks the auth read model, the gateway's own query path: a user
// registered with Prefer: wait is there.
func (g *Gateway) knownUser(field, code string) guard {
	return func(ctx context.Context, p *Principal, _ string, payload map[string]json.RawMessage) (string, string) {
		var id string
		if json.Unmarshal(payload[field], &id) != nil || !isUUID(id) || strings.EqualFold(id, p.UserID) {
			return "", "" // the caller exists; a malformed id is the schema's to report
		}
		_, err := g.cfg.Auth.User(ctx, aggregates.CanonicalID(id))
		switch {
		case errors.Is(err, projections.ErrNotFound):
			return code, "no user has the id " + id
		case err != nil:
			g.log.Error("look up a user", "err", err)
			return codeUnavailable, "the user directory is unavailable; retry later"
		}
		return "", ""
	}
}

// guard is write.Guard's type.
type guard = func(ctx context.Context, p *Principal, aggregateID string, payload map[string]json.RawMessage) (string, string)

// guards runs several guards in order; the first refusal answers.
func guards(gs ...guard) guard {
	return func(ctx context.Context, p *Principal, id string, payload map[string]json.RawMessage) (string, string) {
		for _, g := range gs {
			if code, detail := g(ctx, p, id, payload); code != "" {
				return code, detail
			}
		}
		return "", ""
	}
}

func (g *Gateway) listAccounts(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	owner := r.URL.Query().Get("owner_user_id")
	if !p.Can(domain.GrantReadAny) {
		if owner != "" && !strings.EqualFold(owner, p.UserID) {
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

// pagedChild answers a page of the children of the resource named by the
// path's {id} (an account's ledger, a group's delivery log): 404 unless
// parent finds it for the caller, then the children after the cursor,
// which cursorOf spells and parse reads back.
func pagedChild[P, C, K any](g *Gateway, parent func(context.Context, string) (P, error),
	parse func(cursor string) (K, bool), fetch func(ctx context.Context, id string, after K, limit int) ([]C, error),
	cursorOf func(C) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := mux.Vars(r)["id"]
		if !found(g, w, r, id, parent) {
			return
		}
		var after K
		limit, cursor, bad := pageOf(r)
		if bad == "" && cursor != "" {
			var ok bool
			if after, ok = parse(cursor); !ok {
				bad = "cursor is not one this API returned"
			}
		}
		if bad != "" {
			writeProblem(w, r, codeBadQuery, bad)
			return
		}
		items, err := fetch(r.Context(), id, after, limit+1)
		if err != nil {
			g.internal(w, r, err)
			return
		}
		writePage(w, items, limit, cursorOf)
	}
}

// ledgerCursor is a ledger entry's event version.
func ledgerCursor(e accountread.LedgerEntry) string { return strconv.FormatInt(e.EventVersion, 10) }

func parseLedgerCursor(s string) (int64, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil && v >= 0
}

// messageCursor is a delivery's send version and position: "7.2".
func messageCursor(m accountread.Message) string {
	return strconv.FormatInt(m.SendVersion, 10) + "." + strconv.Itoa(m.Position)
}

func parseMessageCursor(s string) (accountread.MessageCursor, bool) {
	v, pos, ok := strings.Cut(s, ".")
	var c accountread.MessageCursor
	var err1, err2 error
	c.Version, err1 = strconv.ParseInt(v, 10, 64)
	c.Position, err2 = strconv.Atoi(pos)
	return c, ok && err1 == nil && err2 == nil && c.Version >= 0 && c.Position >= 0
}

// found answers 404 (or 500) and returns false unless fetch finds id.
func found[T any](g *Gateway, w http.ResponseWriter, r *http.Request, id string, fetch func(context.Context, string) (T, error)) bool {
	_, ok := fetchOne(g, w, r, id, fetch)
	return ok
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
