//go:build !unix

package postgres

import (
	"context"
	"errors"
	"log/slog"
)

// startPrivate is only implemented on unix systems.
func startPrivate(context.Context, string, *slog.Logger) (*Resolved, error) {
	return nil, errors.New("starting a private PostgreSQL cluster is only supported on unix systems; set a database URL")
}
