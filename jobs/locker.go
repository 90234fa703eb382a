package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/go-co-op/gocron/v2"
	"gorm.io/gorm"
)

// PGLocker is a gocron distributed locker over PostgreSQL session advisory locks: the lock
// holds one pooled connection for the job's run. Because the lock lives in the database
// every instance already shares, no extra service is needed, and it is released by the
// server if the instance dies.
type PGLocker struct{ db *gorm.DB }

// NewPGLocker returns a locker over db.
func NewPGLocker(db *gorm.DB) *PGLocker { return &PGLocker{db: db} }

// ErrLocked is returned when another instance holds the job's lock.
var ErrLocked = errors.New("jobs: locked by another instance")

// Lock takes the advisory lock for key without waiting. It returns ErrLocked when another
// instance holds it.
func (l *PGLocker) Lock(ctx context.Context, key string) (gocron.Lock, error) {
	sqlDB, err := l.db.DB()
	if err != nil {
		return nil, fmt.Errorf("jobs: pool: %w", err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("jobs: acquire connection: %w", err)
	}
	id := lockID(key)
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", id).Scan(&got); err != nil {
		conn.Close()
		return nil, fmt.Errorf("jobs: lock %s: %w", key, err)
	}
	if !got {
		conn.Close()
		return nil, ErrLocked
	}
	return &pgLock{conn: conn, id: id}, nil
}

type pgLock struct {
	conn *sql.Conn
	id   int64
}

func (l *pgLock) Unlock(ctx context.Context) error {
	defer l.conn.Close()
	_, err := l.conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", l.id)
	return err
}

// lockID maps a job name into the advisory lock key space, away from the migration lock.
func lockID(key string) int64 {
	h := fnv.New64a()
	h.Write([]byte("auditdb.job:" + key))
	return int64(h.Sum64() >> 1)
}
