package tokens

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// MaxTokenLen is the longest access token Verify parses. Ours are about
// 400 bytes; the bound keeps header and claims decoding cheap.
const MaxTokenLen = 8 << 10

// ErrNoSigningKey is returned by Issuer.Access while Keys holds no key.
var ErrNoSigningKey = errors.New("tokens: no signing key loaded")

// ErrInvalidToken is the one error kind Verifier.Verify returns: every
// rejection matches errors.Is(err, ErrInvalidToken), so callers answer 401
// without looking further. errors.Unwrap(err) gives the reason, for logs
// only; never send it to the client.
var ErrInvalidToken = errors.New("tokens: invalid token")

// invalidToken is a rejection: ErrInvalidToken with its reason.
type invalidToken struct{ reason error }

func (e *invalidToken) Error() string        { return ErrInvalidToken.Error() + ": " + e.reason.Error() }
func (e *invalidToken) Is(target error) bool { return target == ErrInvalidToken }
func (e *invalidToken) Unwrap() error        { return e.reason }

func reject(reason error) error { return &invalidToken{reason: reason} }

// Reasons for rejection beyond those of jwt.
var (
	errTooLong        = fmt.Errorf("token longer than %d bytes", MaxTokenLen)
	errMissingKid     = errors.New("missing kid header")
	errMalformedKid   = fmt.Errorf("kid is not 1..%d characters of [A-Za-z0-9_-]", MaxKidLen)
	errUnknownKid     = errors.New("unknown kid")
	errCritical       = errors.New("crit header present; no extensions are supported")
	errMissingSubject = errors.New("missing sub")
	errMissingID      = errors.New("missing jti")
	errMissingSession = errors.New("missing sid")
)

// Claims are the claims of an access token: the registered ones plus the
// session (refresh-token family) the token was issued for. A Claims returned
// by Verify has non-empty Subject, ID and SessionID.
type Claims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid"`
}

// Issuer signs access tokens with the current key of its Keys. It is safe
// for concurrent use.
type Issuer struct {
	keys *Keys
	cfg  Config
}

// NewIssuer returns an Issuer for cfg (zero fields take defaults). It panics
// if cfg.WithDefaults().Validate() fails.
func NewIssuer(keys *Keys, cfg Config) *Issuer {
	return &Issuer{keys: keys, cfg: mustConfig(cfg)}
}

// Access returns an EdDSA-signed JWT whose header names the signing key (kid)
// and whose claims are iss, aud, sub=userID, iat=now, exp=now+AccessTTL
// (both truncated to the second), a fresh UUIDv7 jti, and sid=sessionID.
// expiresIn is AccessTTL. It returns ErrNoSigningKey if no key is loaded.
func (i *Issuer) Access(userID, sessionID string, now time.Time) (token string, expiresIn time.Duration, err error) {
	if userID == "" || sessionID == "" {
		return "", 0, errors.New("tokens: access token needs a user id and a session id")
	}
	kid, priv, ok := i.keys.Current()
	if !ok {
		return "", 0, ErrNoSigningKey
	}
	jti, err := uuid.NewV7()
	if err != nil {
		return "", 0, fmt.Errorf("tokens: generate jti: %w", err)
	}
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.cfg.Issuer,
			Subject:   userID,
			Audience:  jwt.ClaimStrings{i.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(i.cfg.AccessTTL)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti.String(),
		},
		SessionID: sessionID,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = kid
	token, err = t.SignedString(priv)
	if err != nil {
		return "", 0, fmt.Errorf("tokens: sign access token: %w", err)
	}
	return token, i.cfg.AccessTTL, nil
}

// Verifier checks access tokens. It is safe for concurrent use.
type Verifier struct {
	keys   *Keys
	parser *jwt.Parser
	leeway time.Duration
	cache  *verified
}

// NewVerifier returns a Verifier for cfg (zero fields take defaults). It
// panics if cfg.WithDefaults().Validate() fails.
func NewVerifier(keys *Keys, cfg Config) *Verifier {
	cfg = mustConfig(cfg)
	return &Verifier{
		keys:   keys,
		leeway: cfg.Leeway,
		cache:  &verified{m: map[string]verifiedToken{}},
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithStrictDecoding(),
		),
	}
}

// Verify returns the claims of token if, and only if, all of these hold:
// it is at most MaxTokenLen bytes; alg is EdDSA; the kid header names the
// current or previous key (the key is chosen by kid alone — jku, x5u and jwk
// headers are never read, and there must be no crit header); the signature
// verifies; exp is present and not past (within Leeway); iat, if present, is
// not in the future (within Leeway); iss and aud match the Config; sub, jti
// and sid are not empty. Any other token yields an error matching
// ErrInvalidToken.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if len(token) > MaxTokenLen {
		return nil, reject(errTooLong)
	}
	now := time.Now()
	if c, ok := v.cache.get(token, now); ok {
		if _, known := v.keys.Public(c.kid); known {
			cp := *c.claims
			return &cp, nil
		}
	}
	claims, kid, err := v.verify(token)
	if err != nil {
		return nil, err
	}
	v.cache.put(token, kid, claims, now, v.leeway)
	return claims, nil
}

// verify checks a token fully: signature, claims, key.
func (v *Verifier) verify(token string) (*Claims, string, error) {
	claims := &Claims{}
	parsed, err := v.parser.ParseWithClaims(token, claims, v.key)
	if err != nil {
		return nil, "", reject(err)
	}
	switch {
	case claims.Subject == "":
		return nil, "", reject(errMissingSubject)
	case claims.ID == "":
		return nil, "", reject(errMissingID)
	case claims.SessionID == "":
		return nil, "", reject(errMissingSession)
	}
	kid, _ := parsed.Header["kid"].(string)
	return claims, kid, nil
}

// verified remembers tokens that passed verification, until they expire,
// so a client's token costs one Ed25519 verification, not one per request
// (about 60 µs). A hit is the very same token string, so every check but
// time and key would give the same answer again; expiry is checked on
// every hit, and so is the key still being one the gateway trusts.
type verified struct {
	mu sync.Mutex
	m  map[string]verifiedToken
}

type verifiedToken struct {
	claims *Claims
	kid    string
	until  time.Time
}

// maxVerified bounds the cache; tokens are about 500 bytes.
const maxVerified = 50_000

func (c *verified) get(token string, now time.Time) (verifiedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[token]
	if ok && !now.Before(t.until) {
		delete(c.m, token)
		return t, false
	}
	return t, ok
}

func (c *verified) put(token, kid string, claims *Claims, now time.Time, leeway time.Duration) {
	if claims.ExpiresAt == nil || len(token) > 4096 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxVerified {
		for k, t := range c.m { // drop the expired, or an arbitrary tenth
			if !now.Before(t.until) || len(c.m) > maxVerified*9/10 {
				delete(c.m, k)
			}
		}
	}
	cp := *claims
	c.m[token] = verifiedToken{claims: &cp, kid: kid, until: claims.ExpiresAt.Add(leeway)}
}

// key is the jwt.Keyfunc: it looks only at the kid header.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errCritical
	}
	kid, ok := t.Header["kid"].(string)
	if !ok || kid == "" {
		return nil, errMissingKid
	}
	if !validKid(kid) {
		return nil, errMalformedKid
	}
	pub, ok := v.keys.Public(kid)
	if !ok {
		return nil, errUnknownKid
	}
	return pub, nil
}
