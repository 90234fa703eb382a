package cli

import (
	"bytes"
	"context"
	"testing"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/merkle"
	"auditdb/models/pgtest"
)

// cliWorld is a data directory and database as the command line sees them, holding one
// organization created through it, with the keys the command line finds there.
type cliWorld struct {
	t      *testing.T
	vars   map[string]string
	cfg    config
	db     *gorm.DB
	sealer *models.Sealer
	ck     *merkle.CheckpointKey
	log    *merkle.Log // the organization's Merkle log, checkpoints off
}

func newCLIWorld(t *testing.T, org, name string) *cliWorld {
	t.Helper()
	w := &cliWorld{t: t, vars: map[string]string{"AUDITDB_DATABASE_URL": pgtest.DSN(t), "AUDITDB_DATA_DIR": t.TempDir()}}
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"org", "create", "--id", org, "--name", name}, env(w.vars), &out); err != nil {
		t.Fatal(err)
	}
	var err error
	if w.cfg, err = loadConfig(env(w.vars)); err != nil {
		t.Fatal(err)
	}
	if w.sealer, w.ck, err = integrityKeys(w.cfg); err != nil {
		t.Fatal(err)
	}
	w.db = pgtest.DB(t)
	w.log = merkle.NewLog(w.db, w.ck)
	w.log.CheckpointEvery = 0
	return w
}

// write seals evs in place with the command line's keys and stores them (not sequenced).
func (w *cliWorld) write(evs []models.Event) {
	w.t.Helper()
	for i := range evs {
		if err := w.sealer.Seal(&evs[i]); err != nil {
			w.t.Fatal(err)
		}
	}
	if _, err := ingest.CopyEvents(context.Background(), w.db, models.NewPartitionManager(w.db), evs); err != nil {
		w.t.Fatal(err)
	}
}

// sequence appends everything queued to the Merkle logs.
func (w *cliWorld) sequence() {
	w.t.Helper()
	if _, err := w.log.Sequence(context.Background(), 1000); err != nil {
		w.t.Fatal(err)
	}
}
