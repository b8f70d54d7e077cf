package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/schemas"
)

// Problem is an RFC 9457 problem document with Strata's stable code.
type Problem struct {
	Type     string               `json:"type"`
	Title    string               `json:"title"`
	Status   int                  `json:"status"`
	Detail   string               `json:"detail,omitempty"`
	Code     string               `json:"code"`
	Instance string               `json:"instance,omitempty"`
	Errors   []schemas.FieldError `json:"errors,omitempty"`
}

// Codes the gateway itself produces.
const (
	codeValidation       = "validation_failed"
	codeMalformedJSON    = "malformed_json"
	codeBodyTooLarge     = "body_too_large"
	codeUnsupportedMedia = "unsupported_media_type"
	codeUnavailable      = "unavailable"
	codeInternal         = "internal"
	codeIdempotencyReuse = "idempotency_key_reused"
	codeBadHeader        = "invalid_header"
	codeBadQuery         = "invalid_query"
	codeMethod           = "method_not_allowed"
	codeUnauthorized     = "unauthorized"
	codeForbidden        = "forbidden"
	codeBusy             = "busy"
	codeTooManyAttempts  = "too_many_attempts"
	// codeInvalidCredentials is the one answer to an unknown email, a
	// wrong password and a disabled user.
	codeInvalidCredentials = "invalid_credentials"
	codeInvalidRefresh     = "invalid_refresh_token"
)

// statusOf maps a rejection or gateway code to its HTTP status. This is the
// only place domain codes meet HTTP.
func statusOf(code string) int {
	switch code {
	case aggregates.CodeNotFound:
		return http.StatusNotFound
	case aggregates.CodeVersionConflict:
		return http.StatusPreconditionFailed
	case "permission_exists", "role_exists", "already_granted", "email_taken", "already_assigned",
		"already_disabled", "already_enabled", aggregates.CodeAlreadyExists, aggregates.CodeDeleted,
		"account_frozen", "balance_not_zero", "account_closed", "already_frozen", "not_frozen", "transfer_in_flight",
		"transfer_settled", "pay_plan_exists", "pay_plan_retired", "template_exists", "group_exists",
		"already_member", "not_member":
		return http.StatusConflict
	case codeValidation, codeMalformedJSON, codeBadHeader, codeBadQuery:
		return http.StatusBadRequest
	case codeBodyTooLarge:
		return http.StatusRequestEntityTooLarge
	case codeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case codeUnavailable, codeBusy:
		return http.StatusServiceUnavailable
	case codeUnauthorized, codeInvalidCredentials, codeInvalidRefresh:
		return http.StatusUnauthorized
	case codeForbidden: // also aggregates.CodeForbidden
		return http.StatusForbidden
	case codeTooManyAttempts:
		return http.StatusTooManyRequests
	case codeInternal:
		return http.StatusInternalServerError
	case codeMethod:
		return http.StatusMethodNotAllowed
	}
	return http.StatusUnprocessableEntity
}

// writeProblem writes a problem with the status belonging to code.
func writeProblem(w http.ResponseWriter, r *http.Request, code, detail string, fields ...schemas.FieldError) {
	status := statusOf(code)
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Problem{
		Type:     "https://strata.dev/problems/" + code,
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   detail,
		Code:     code,
		Instance: r.URL.Path,
		Errors:   fields,
	})
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
