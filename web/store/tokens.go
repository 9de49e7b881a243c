package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Token is an API-managed bearer token. Only the SHA-256 of its secret is
// stored; the secret is shown once, when it is created.
type Token struct {
	ID        int64
	UUID      string
	Name      string
	Role      string
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt *time.Time
}

func scanToken(sc interface{ Scan(...any) error }) (Token, error) {
	var tk Token
	var created string
	var expires sql.NullString
	err := sc.Scan(&tk.ID, &tk.UUID, &tk.Name, &tk.Role, &tk.CreatedBy, &created, &expires)
	tk.CreatedAt, tk.ExpiresAt = parseTime(created), timePtr(expires)
	return tk, err
}

const tokenColumns = "id, uuid, name, role, created_by, created_at, expires_at"

// CreateToken stores a token by the SHA-256 (hex) of its secret. The name
// must be unused among live tokens (ErrDuplicate).
func (s *Store) CreateToken(ctx context.Context, name, role, secretSHA256 string, expires *time.Time) (*Token, error) {
	id := uuid.NewString()
	err := s.write(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO tokens (uuid, name, role, secret_sha256, created_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, id, name, role, secretSHA256, ActorFrom(ctx).Name, fmtTime(t.now), nullTime(expires))
		if isUnique(err) {
			return fmt.Errorf("token %s: %w", name, ErrDuplicate)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	tk, err := scanToken(s.db.QueryRowContext(ctx, "SELECT "+tokenColumns+" FROM tokens WHERE uuid = ?", id))
	return found(&tk, err, "Token", id)
}

// ListTokens lists the live tokens, oldest first.
func (s *Store) ListTokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+tokenColumns+" FROM tokens WHERE deleted = 0 ORDER BY id")
	if err != nil {
		return nil, err
	}
	return collectRows(rows, scanToken)
}

// RevokeToken soft-deletes a token by UUID or name.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	cond, arg := ident("tokens", id, true)
	return s.write(ctx, func(t *tx) error {
		res, err := t.exec("UPDATE tokens SET deleted = id, deleted_at = ?, updated_at = ? WHERE "+cond+" AND deleted = 0",
			fmtTime(t.now), fmtTime(t.now), arg)
		return affected(res, err, "Token", id)
	})
}

// TokenBySecret returns the live, unexpired token whose secret hashes to
// secretSHA256, or nil.
func (s *Store) TokenBySecret(ctx context.Context, secretSHA256 string) (*Token, error) {
	tk, err := scanToken(s.db.QueryRowContext(ctx, "SELECT "+tokenColumns+
		" FROM tokens WHERE secret_sha256 = ? AND deleted = 0 AND (expires_at IS NULL OR expires_at > ?)",
		secretSHA256, fmtTime(s.now())))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &tk, nil
}
