// Package tokens issues and verifies the platform's credentials: EdDSA
// (Ed25519) access tokens signed with keys kept in Postgres (Keys, Issuer,
// Verifier), and opaque, rotating, hashed refresh tokens grouped into
// sessions (Sessions).
//
// The tables live in one schema; Migration returns the SQL that creates them.
package tokens

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Config defaults.
const (
	DefaultIssuer     = "strata"
	DefaultAudience   = "strata-api"
	DefaultAccessTTL  = 15 * time.Minute
	DefaultRefreshTTL = 30 * 24 * time.Hour
	DefaultLeeway     = 30 * time.Second
)

// MaxLeeway bounds Config.Leeway: more clock skew than this is a bug to fix,
// not to tolerate.
const MaxLeeway = 5 * time.Minute

// Config is the token policy shared by Issuer, Verifier and Sessions. Zero
// fields take the Default… values (see WithDefaults).
type Config struct {
	Issuer     string        // iss of issued tokens, and the only iss accepted
	Audience   string        // aud of issued tokens, and the audience required
	AccessTTL  time.Duration // lifetime of an access token
	RefreshTTL time.Duration // lifetime of a refresh token (each rotation starts a new one)
	Leeway     time.Duration // clock skew tolerated on exp and iat
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.AccessTTL == 0 {
		c.AccessTTL = DefaultAccessTTL
	}
	if c.RefreshTTL == 0 {
		c.RefreshTTL = DefaultRefreshTTL
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	return c
}

// Validate reports every way c is unusable, joined with errors.Join, or nil.
// Call it on c.WithDefaults().
func (c Config) Validate() error {
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("tokens: Issuer is empty"))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("tokens: Audience is empty"))
	}
	if c.AccessTTL <= 0 {
		errs = append(errs, fmt.Errorf("tokens: AccessTTL must be positive, got %v", c.AccessTTL))
	}
	if c.RefreshTTL < c.AccessTTL {
		errs = append(errs, fmt.Errorf("tokens: RefreshTTL (%v) must be at least AccessTTL (%v)", c.RefreshTTL, c.AccessTTL))
	}
	if c.Leeway < 0 || c.Leeway > MaxLeeway {
		errs = append(errs, fmt.Errorf("tokens: Leeway must be in [0, %v], got %v", MaxLeeway, c.Leeway))
	}
	return errors.Join(errs...)
}

// mustConfig applies defaults and panics on an invalid config: constructors
// run at start-up with a config the program validated already.
func mustConfig(c Config) Config {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		panic(err)
	}
	return c
}

// table returns the sanitized, schema-qualified name of a table.
func table(schema, name string) string {
	return pgx.Identifier{schema, name}.Sanitize()
}
