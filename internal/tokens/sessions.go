package tokens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Refresh-token errors. Callers answer 401 to both.
var (
	// ErrInvalidRefresh means the refresh token is unknown, malformed or
	// expired.
	ErrInvalidRefresh = errors.New("tokens: invalid refresh token")
	// ErrRefreshReused means a refresh token was presented after it had been
	// used or revoked: it has probably been stolen, so its whole session was
	// revoked. It matches errors.Is(err, ErrInvalidRefresh) too.
	ErrRefreshReused = fmt.Errorf("%w: reused; session revoked", ErrInvalidRefresh)
)

// refreshBytes is the entropy of a refresh token.
const refreshBytes = 32

// refreshLen is the length of its unpadded base64url encoding.
var refreshLen = base64.RawURLEncoding.EncodedLen(refreshBytes)

// Sessions keeps refresh tokens. A session (family_id, the sid of its access
// tokens) starts at login and is a chain of refresh tokens, each usable once
// to get the next. Only SHA-256 hashes of tokens are stored. Sessions is
// safe for concurrent use.
type Sessions struct {
	pool    *pgxpool.Pool
	tokens  string // sanitized refresh_tokens
	revoked string // sanitized revoked_sessions
	cfg     Config
	now     func() time.Time
}

// NewSessions returns the session store on the tables of schema, with
// cfg.RefreshTTL as the lifetime of each refresh token (zero fields of cfg
// take defaults). It panics if cfg.WithDefaults().Validate() fails.
func NewSessions(pool *pgxpool.Pool, schema string, cfg Config) *Sessions {
	return &Sessions{
		pool:    pool,
		tokens:  table(schema, "refresh_tokens"),
		revoked: table(schema, "revoked_sessions"),
		cfg:     mustConfig(cfg),
		now:     time.Now,
	}
}

// mintRefresh returns a fresh refresh token and its hash.
func mintRefresh() (token string, hash []byte) {
	b := make([]byte, refreshBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	token = base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(token))
	return token, h[:]
}

// hashRefresh returns the stored hash of token, or false if token cannot be
// one of ours (so it costs no query).
func hashRefresh(token string) ([]byte, bool) {
	if len(token) != refreshLen {
		return nil, false
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(token); err != nil {
		return nil, false
	}
	h := sha256.Sum256([]byte(token))
	return h[:], true
}

// Start begins a new session for userID (a UUID) and returns its first
// refresh token (32 random bytes, unpadded base64url) and the session id.
func (s *Sessions) Start(ctx context.Context, userID string) (refresh, sessionID string, err error) {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return "", "", fmt.Errorf("tokens: start session: user id is not a UUID: %w", err)
	}
	family, err := uuid.NewV7()
	if err != nil {
		return "", "", fmt.Errorf("tokens: start session: %w", err)
	}
	token, hash := mintRefresh()
	_, err = s.pool.Exec(ctx,
		"INSERT INTO "+s.tokens+" (token_hash, user_id, family_id, expires_at) VALUES ($1, $2, $3, $4)",
		hash, uid.String(), family.String(), s.now().Add(s.cfg.RefreshTTL))
	if err != nil {
		return "", "", fmt.Errorf("tokens: start session: %w", err)
	}
	return token, family.String(), nil
}

// Rotate exchanges refresh for its successor in the same session, in one
// transaction that locks the token's row, so that of two concurrent Rotates
// of one token exactly one succeeds. It returns
//   - ErrInvalidRefresh if the token is unknown, malformed or expired;
//   - ErrRefreshReused if it was already used or revoked, or its session was
//     revoked: the whole session is then revoked (every token of it, and its
//     id recorded in revoked_sessions) and that revocation is committed.
//
// Otherwise the token is marked used and the successor expires RefreshTTL
// from now.
func (s *Sessions) Rotate(ctx context.Context, refresh string) (userID, newRefresh, sessionID string, err error) {
	hash, ok := hashRefresh(refresh)
	if !ok {
		return "", "", "", ErrInvalidRefresh
	}
	now := s.now()
	var reused bool
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var expires time.Time
		var spent bool
		err := tx.QueryRow(ctx, `
SELECT t.user_id::text, t.family_id::text, t.expires_at,
       t.used_at IS NOT NULL OR t.revoked_at IS NOT NULL
       OR EXISTS (SELECT 1 FROM `+s.revoked+` r WHERE r.family_id = t.family_id)
FROM `+s.tokens+` t WHERE t.token_hash = $1 FOR UPDATE OF t`, hash).
			Scan(&userID, &sessionID, &expires, &spent)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return ErrInvalidRefresh
		case err != nil:
			return err
		case spent:
			reused = true
			return s.revokeFamily(ctx, tx, sessionID, userID, now)
		case !expires.After(now):
			return ErrInvalidRefresh
		}
		if _, err := tx.Exec(ctx, "UPDATE "+s.tokens+" SET used_at = $2 WHERE token_hash = $1", hash, now); err != nil {
			return err
		}
		var next []byte
		newRefresh, next = mintRefresh()
		_, err = tx.Exec(ctx,
			"INSERT INTO "+s.tokens+" (token_hash, user_id, family_id, expires_at) VALUES ($1, $2, $3, $4)",
			next, userID, sessionID, now.Add(s.cfg.RefreshTTL))
		return err
	})
	switch {
	case errors.Is(err, ErrInvalidRefresh):
		return "", "", "", err
	case err != nil:
		return "", "", "", fmt.Errorf("tokens: rotate refresh token: %w", err)
	case reused:
		return "", "", "", ErrRefreshReused
	}
	return userID, newRefresh, sessionID, nil
}

// revokeFamily revokes every token of a session and records the session as
// revoked (both idempotent).
func (s *Sessions) revokeFamily(ctx context.Context, tx pgx.Tx, family, user string, now time.Time) error {
	_, err := tx.Exec(ctx, `
WITH t AS (UPDATE `+s.tokens+` SET revoked_at = $3 WHERE family_id = $1 AND revoked_at IS NULL)
INSERT INTO `+s.revoked+` (family_id, user_id, revoked_at) VALUES ($1, $2, $3)
ON CONFLICT (family_id) DO NOTHING`, family, user, now)
	return err
}

// Revoke ends the session of refresh (logout), whatever state the token is
// in: every token of the session stops working and the session id is
// recorded in revoked_sessions. It returns ErrInvalidRefresh if the token is
// unknown or malformed. Revoking twice is not an error.
func (s *Sessions) Revoke(ctx context.Context, refresh string) error {
	hash, ok := hashRefresh(refresh)
	if !ok {
		return ErrInvalidRefresh
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var user, family string
		err := tx.QueryRow(ctx, "SELECT user_id::text, family_id::text FROM "+s.tokens+" WHERE token_hash = $1", hash).
			Scan(&user, &family)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrInvalidRefresh
		}
		if err != nil {
			return err
		}
		return s.revokeFamily(ctx, tx, family, user, s.now())
	})
	if err != nil && !errors.Is(err, ErrInvalidRefresh) {
		return fmt.Errorf("tokens: revoke session: %w", err)
	}
	return err
}

// RevokeUser ends every session of userID that still has an unexpired
// refresh token (for example after a password change or when the user is
// disabled). A session started concurrently with it may survive.
func (s *Sessions) RevokeUser(ctx context.Context, userID string) error {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return fmt.Errorf("tokens: revoke user: user id is not a UUID: %w", err)
	}
	_, err = s.pool.Exec(ctx, `
WITH t AS (UPDATE `+s.tokens+` SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL)
INSERT INTO `+s.revoked+` (family_id, user_id, revoked_at)
SELECT DISTINCT family_id, user_id, $2::timestamptz FROM `+s.tokens+` WHERE user_id = $1 AND expires_at > $2
ON CONFLICT (family_id) DO NOTHING`, uid.String(), s.now())
	if err != nil {
		return fmt.Errorf("tokens: revoke user: %w", err)
	}
	return nil
}

// RevokedSessions returns the ids of userID's sessions revoked recently
// enough that an access token issued before the revocation could still
// verify (within AccessTTL + 2×Leeway; the second Leeway covers clock skew
// between servers). Older revocations are left out: their access tokens have
// expired. Meant to be cached with the user's permissions and checked
// against Claims.SessionID.
func (s *Sessions) RevokedSessions(ctx context.Context, userID string) (map[string]bool, error) {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return nil, fmt.Errorf("tokens: revoked sessions: user id is not a UUID: %w", err)
	}
	since := s.now().Add(-(s.cfg.AccessTTL + 2*s.cfg.Leeway))
	rows, err := s.pool.Query(ctx,
		"SELECT family_id::text FROM "+s.revoked+" WHERE user_id = $1 AND revoked_at > $2", uid.String(), since)
	if err != nil {
		return nil, fmt.Errorf("tokens: revoked sessions: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("tokens: revoked sessions: %w", err)
	}
	revoked := make(map[string]bool, len(ids))
	for _, id := range ids {
		revoked[id] = true
	}
	return revoked, nil
}

// Purge deletes refresh tokens that have expired and revocation records old
// enough that every token of their session has expired (RefreshTTL +
// AccessTTL after revocation). Neither can change any answer of Sessions
// except that a long-expired token is reported as ErrInvalidRefresh rather
// than ErrRefreshReused. Run it periodically: every refresh adds a row.
func (s *Sessions) Purge(ctx context.Context) (deleted int64, err error) {
	now := s.now()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM "+s.tokens+" WHERE expires_at <= $1", now)
		if err != nil {
			return err
		}
		deleted = tag.RowsAffected()
		tag, err = tx.Exec(ctx, "DELETE FROM "+s.revoked+" WHERE revoked_at < $1",
			now.Add(-(s.cfg.RefreshTTL + s.cfg.AccessTTL)))
		deleted += tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("tokens: purge: %w", err)
	}
	return deleted, nil
}
