package auth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-cqrs/strata/aggregates"
	domain "github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/commands"
)

// Sender produces a signed command; commands.Bus implements it.
type Sender interface {
	Send(ctx context.Context, env *commands.Envelope) error
}

// Hasher hashes a password.
type Hasher interface {
	Hash(ctx context.Context, password string) (string, error)
}

// BootstrapConfig configures Bootstrap.
type BootstrapConfig struct {
	Pool     *pgxpool.Pool
	Registry *commands.Registry
	Bus      Sender
	Hasher   Hasher
	Logger   *slog.Logger
	// AdminEmail and AdminPassword name the first admin. Without a password
	// the admin is created only when GeneratePassword is set (dev).
	AdminEmail       string
	AdminPassword    string
	GeneratePassword bool
	// Wait bounds how long each step waits for its commands. Default 30s.
	Wait time.Duration
}

// BootstrapResult says what bootstrap did.
type BootstrapResult struct {
	Created           int    // commands accepted in this run
	AdminCreated      bool   // the admin user was registered in this run
	GeneratedPassword string // set only when it was generated and used
}

// actor is who bootstrap commands act as.
const actor = "system:bootstrap"

// namespace derives bootstrap's deterministic ids, so a second run finds
// (and never repeats) what the first did.
var namespace = uuid.MustParse("b7d5c1f2-8e34-4a6b-9c0d-5f1e2a3b4c6d")

func detID(parts ...string) string {
	b, _ := json.Marshal(parts)
	return uuid.NewSHA1(namespace, b).String()
}

// Bootstrap creates, through ordinary signed commands, every built-in
// permission, the admin role holding them all, and the admin user with
// that role. It reads the journal first and sends only what is missing, so
// running it again changes nothing.
func Bootstrap(ctx context.Context, cfg BootstrapConfig) (BootstrapResult, error) {
	if cfg.Wait <= 0 {
		cfg.Wait = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &bootstrap{cfg: cfg, statuses: commands.NewStatusStore(cfg.Pool),
		journal: commands.NewJournal(domain.Service, cfg.Registry)}
	var res BootstrapResult
	perms, err := b.permissions(ctx, &res)
	if err != nil {
		return res, err
	}
	roleID, err := b.adminRole(ctx, perms, &res)
	if err != nil {
		return res, err
	}
	return res, b.adminUser(ctx, roleID, &res)
}

type bootstrap struct {
	cfg      BootstrapConfig
	statuses *commands.StatusStore
	journal  *commands.Journal
}

// owner returns the aggregate holding a unique key, or "".
func (b *bootstrap) owner(ctx context.Context, scope, key string) (string, error) {
	var id string
	err := b.cfg.Pool.QueryRow(ctx, `SELECT aggregate_id::text FROM auth.unique_keys WHERE scope=$1 AND key=$2`,
		scope, key).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// permissions returns the id of every built-in permission, creating the
// missing ones.
func (b *bootstrap) permissions(ctx context.Context, res *BootstrapResult) (map[string]string, error) {
	ids := map[string]string{}
	var pending []step
	for _, name := range domain.BuiltinPermissions {
		id, err := b.owner(ctx, "permission_name", name)
		if err != nil {
			return nil, err
		}
		if id == "" {
			id = detID("permission", name)
			pending = append(pending, step{cmd: domain.CreatePermission{Name: name, Description: "built-in"}, agg: id})
		}
		ids[name] = id
	}
	return ids, b.run(ctx, res, pending)
}

// adminRole returns the admin role's id, creating it and granting every
// built-in permission it lacks.
func (b *bootstrap) adminRole(ctx context.Context, perms map[string]string, res *BootstrapResult) (string, error) {
	id, err := b.owner(ctx, "role_name", domain.AdminRole)
	if err != nil {
		return "", err
	}
	if id == "" {
		id = detID("role", domain.AdminRole)
		cmd := domain.CreateRole{Name: domain.AdminRole, Description: "every built-in permission"}
		if err := b.run(ctx, res, []step{{cmd: cmd, agg: id}}); err != nil {
			return "", err
		}
	}
	def, _ := b.cfg.Registry.Aggregate(domain.Service, "role")
	role, err := b.journal.Load(ctx, b.cfg.Pool, def, id)
	if err != nil {
		return "", err
	}
	var grants []step
	for _, name := range domain.BuiltinPermissions {
		if !role.State.(domain.Role).Permissions[perms[name]] {
			grants = append(grants, step{cmd: domain.GrantPermission{PermissionID: perms[name]}, agg: id})
		}
	}
	return id, b.run(ctx, res, grants)
}

// adminUser registers the admin and gives them the admin role.
func (b *bootstrap) adminUser(ctx context.Context, roleID string, res *BootstrapResult) error {
	if b.cfg.AdminEmail == "" {
		return nil
	}
	id, err := b.owner(ctx, "user_email", domain.NormalizeEmail(b.cfg.AdminEmail))
	if err != nil {
		return err
	}
	if id == "" {
		password := b.cfg.AdminPassword
		if password == "" && !b.cfg.GeneratePassword {
			b.cfg.Logger.Warn("bootstrap: no admin user created; set STRATA_ADMIN_PASSWORD")
			return nil
		}
		if password == "" {
			password = generatePassword()
			res.GeneratedPassword = password
		}
		hash, err := b.cfg.Hasher.Hash(ctx, password)
		if err != nil {
			return err
		}
		id = detID("user", domain.NormalizeEmail(b.cfg.AdminEmail))
		cmd := domain.RegisterUser{Email: b.cfg.AdminEmail, Name: "Administrator"}
		secret := &commands.Secret{Kind: domain.SecretPassword, Value: []byte(hash)}
		if err := b.run(ctx, res, []step{{cmd: cmd, agg: id, secret: secret}}); err != nil {
			return err
		}
		res.AdminCreated = true
	}
	def, _ := b.cfg.Registry.Aggregate(domain.Service, "user")
	user, err := b.journal.Load(ctx, b.cfg.Pool, def, id)
	if err != nil || user.State.(domain.User).Roles[roleID] {
		return err
	}
	return b.run(ctx, res, []step{{cmd: domain.AssignRole{RoleID: roleID}, agg: id}})
}

// step is one bootstrap command.
type step struct {
	cmd    aggregates.Command
	agg    string
	secret *commands.Secret
}

// run submits the steps (skipping ones an earlier run already submitted)
// and waits until each is decided; a rejection is an error.
func (b *bootstrap) run(ctx context.Context, res *BootstrapResult, steps []step) error {
	ids := make([]string, 0, len(steps))
	for _, s := range steps {
		payload, err := json.Marshal(s.cmd)
		if err != nil {
			return err
		}
		env := &commands.Envelope{
			ID:            detID("command", s.cmd.CommandType(), s.agg, string(payload)),
			Type:          domain.Service + "." + s.cmd.CommandType(),
			AggregateID:   s.agg,
			Actor:         commands.Actor{UserID: actor},
			IssuedAt:      time.Now().UTC(),
			CorrelationID: "bootstrap",
			Payload:       payload,
		}
		ids = append(ids, env.ID)
		if err := b.submit(ctx, env, s.secret); err != nil {
			return fmt.Errorf("bootstrap %s: %w", env.Type, err)
		}
	}
	for _, id := range ids {
		if err := b.await(ctx, id); err != nil {
			return err
		}
		res.Created++
	}
	return nil
}

// submit records and produces a step's command. A step an earlier run
// already submitted is skipped once decided, produced again while pending
// (the worker dedupes by id), and retried when its produce had failed; its
// secret is staged again either way, so the password of this run is the
// one that counts.
func (b *bootstrap) submit(ctx context.Context, env *commands.Envelope, secret *commands.Secret) error {
	st, err := b.statuses.Get(ctx, env.ID)
	switch {
	case errors.Is(err, commands.ErrNotFound):
		if _, _, err := b.statuses.InsertPending(ctx, commands.Submission{Envelope: env, Secret: secret}); err != nil {
			return err
		}
	case err != nil:
		return err
	case st.Status == commands.StatusFailed || st.Status == commands.StatusPending ||
		st.Code != nil && *st.Code == aggregates.CodeForged:
		// A forged copy refused under this deterministic id is no decision.
		if _, err := b.cfg.Pool.Exec(ctx, `UPDATE strata.commands SET status = 'pending', code = NULL, reason = NULL,
			decided_at = NULL, recorded_at = now(), type = $2, aggregate_id = $3, actor = $4
			WHERE id = $1 AND (status IN ('pending', 'failed') OR code = $5)`,
			env.ID, env.Type, env.AggregateID, env.Actor.UserID, aggregates.CodeForged); err != nil {
			return err
		}
		if secret != nil {
			if err := commands.StageSecret(ctx, b.cfg.Pool, domain.Service, env.ID, secret.Kind, secret.Value); err != nil {
				return err
			}
		}
	default:
		return nil // decided by an earlier run
	}
	return b.cfg.Bus.Send(ctx, env)
}

// await polls until a command is decided.
func (b *bootstrap) await(ctx context.Context, id string) error {
	deadline := time.Now().Add(b.cfg.Wait)
	for {
		st, err := b.statuses.Get(ctx, id)
		if err != nil {
			return err
		}
		switch st.Status {
		case commands.StatusAccepted, commands.StatusProjected:
			return nil
		case commands.StatusRejected, commands.StatusFailed:
			return fmt.Errorf("bootstrap: %s was %s: %s", st.Type, st.Status, deref(st.Code))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bootstrap: %s still %s after %s", st.Type, st.Status, b.cfg.Wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// generatePassword returns 20 random characters from an unambiguous set.
func generatePassword() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	out := make([]byte, 20)
	for i := range out {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		out[i] = alphabet[n.Int64()]
	}
	return string(out)
}
