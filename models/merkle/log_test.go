package merkle_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/merkle"
	"auditdb/models/pgtest"
)

func testCheckpointKey(t testing.TB) *merkle.CheckpointKey {
	t.Helper()
	k, err := merkle.NewCheckpointKey([]byte("checkpoint-test-seed-0123456789!"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sequenceAll(t *testing.T, l *merkle.Log) {
	t.Helper()
	if _, err := l.Sequence(context.Background(), 100_000); err != nil {
		t.Fatal(err)
	}
}

// referenceRoot is RFC 6962's MTH written out plainly, to check the library-built trees.
func referenceRoot(leaves [][]byte) []byte {
	if len(leaves) == 1 {
		h := sha256.Sum256(append([]byte{0}, leaves[0]...))
		return h[:]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := referenceRoot(leaves[:k]), referenceRoot(leaves[k:])
	h := sha256.Sum256(append(append([]byte{1}, l...), r...))
	return h[:]
}

func TestMerkleLogSequenceProofsAndCheckpoints(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	l := merkle.NewLog(db, testCheckpointKey(t))
	l.CheckpointEvery = 0
	org := pgtest.NewOrg(t, "")
	var all []models.Event
	// Uneven runs cross the stored level (64-leaf blocks) in several ways.
	for _, n := range []int{1, 2, 61, 64, 200, 3} {
		all = append(all, pgtest.WriteEvents(t, db, org, n)...)
		sequenceAll(t, l)
	}
	cp, err := l.Latest(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Number != 6 || cp.TreeSize != int64(len(all)) {
		t.Fatalf("latest checkpoint %d of size %d; want 6 of %d", cp.Number, cp.TreeSize, len(all))
	}

	var leaves [][]byte
	var rows []merkle.Leaf
	if err := db.Where("organization_id = ?", org).Order("leaf_index").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	for _, lf := range rows {
		raw, _ := hex.DecodeString(lf.EventHash)
		leaves = append(leaves, raw)
	}
	if got := referenceRoot(leaves); hex.EncodeToString(got) != hex.EncodeToString(cp.RootHash) {
		t.Fatal("the checkpoint root is not the RFC 6962 root of the leaves")
	}

	t.Run("the checkpoint is a signed C2SP note", func(t *testing.T) {
		n, err := note.Open([]byte(cp.Note), note.VerifierList(l.Key().Verifier()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(n.Text, "\n")
		if lines[0] != merkle.Origin(org) || lines[1] != strconv.Itoa(len(all)) || lines[3] != "seq 6" || !strings.HasPrefix(lines[4], "prev ") {
			t.Fatalf("note text = %q", n.Text)
		}
		other, _ := merkle.NewCheckpointKey(make([]byte, 32))
		if _, err := note.Open([]byte(cp.Note), note.VerifierList(other.Verifier())); err == nil {
			t.Fatal("a note must not open with another key")
		}
	})
	t.Run("inclusion proofs verify", func(t *testing.T) {
		for _, i := range []int{0, 1, 63, 64, 127, 128, 200, len(all) - 1} {
			p, err := l.Prove(ctx, org, all[i].ID)
			if err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			if p.EventHash != all[i].Hash || p.Checkpoint.Number != cp.Number {
				t.Fatalf("event %d: proof of %s in checkpoint %d", i, p.EventHash, p.Checkpoint.Number)
			}
			if err := merkle.VerifyInclusion(p); err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			p.LeafHash[0] ^= 1
			if merkle.VerifyInclusion(p) == nil {
				t.Fatalf("event %d: a wrong leaf verified", i)
			}
		}
	})
	t.Run("consistency proofs between checkpoints verify", func(t *testing.T) {
		var cps []merkle.Checkpoint
		db.Where("organization_id = ?", org).Order("number").Find(&cps)
		for i := 1; i < len(cps); i++ {
			a, b := cps[i-1], cps[i]
			hashes, err := l.ConsistencyProof(ctx, org, a.TreeSize, b.TreeSize)
			if err != nil {
				t.Fatal(err)
			}
			if err := merkle.VerifyConsistency(a.TreeSize, b.TreeSize, hashes, a.RootHash, b.RootHash); err != nil {
				t.Fatalf("checkpoints %d→%d: %v", a.Number, b.Number, err)
			}
		}
	})
	t.Run("a whole check finds nothing", func(t *testing.T) {
		rep, err := merkle.NewVerifier(db, pgtest.Sealer(t), l).CheckOrg(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Events != int64(len(all)) || rep.Leaves != int64(len(all)) || rep.Checkpoints != 6 {
			t.Fatalf("report %+v", rep)
		}
	})
	t.Run("another organization's event has no proof", func(t *testing.T) {
		if _, err := l.Prove(ctx, pgtest.NewOrg(t, ""), all[0].ID); models.KindOf(err) != models.KindNotFound {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("leaves and checkpoints refuse changes", func(t *testing.T) {
		for _, sql := range []string{`DELETE FROM audit_leaf WHERE organization_id = ?`, `UPDATE audit_checkpoint SET tree_size = 1 WHERE organization_id = ?`,
			`DELETE FROM audit_merkle_node WHERE organization_id = ?`} {
			if err := db.Exec(sql, org).Error; err == nil || !strings.Contains(err.Error(), "immutable") {
				t.Fatalf("%s: err = %v", sql, err)
			}
		}
	})
}

func TestMerkleLogPendingAndCheckpointPacing(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	l := merkle.NewLog(db, testCheckpointKey(t))
	l.CheckpointEvery = time.Hour
	org := pgtest.NewOrg(t, "")
	evs := pgtest.WriteEvents(t, db, org, 5)
	if _, err := l.Prove(ctx, org, evs[0].ID); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("unsequenced event: err = %v", err)
	}
	sequenceAll(t, l)
	pgtest.WriteEvents(t, db, org, 5)
	res, err := l.Sequence(ctx, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	if res.Leaves != 5 || res.Checkpoints != 0 {
		t.Fatalf("second run %+v: the second checkpoint is not due for an hour", res)
	}
	cp, _ := l.Latest(ctx, org)
	if cp.TreeSize != 5 {
		t.Fatalf("latest checkpoint covers %d", cp.TreeSize)
	}
	rep, err := merkle.NewVerifier(db, pgtest.Sealer(t), l).CheckOrg(ctx, org)
	if err != nil || !rep.OK() || rep.Leaves != 10 {
		t.Fatalf("leaves past the latest checkpoint are fine: %+v %v", rep, err)
	}
}

// The queue holds a row per write: the sequencer takes whole writes until it has the
// events it asked for, and the log keeps the events' order.
func TestSequenceTakesWholeWrites(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	l := merkle.NewLog(db, testCheckpointKey(t))
	l.CheckpointEvery = 0
	sequenceAll(t, l) // whatever earlier tests left
	org := pgtest.NewOrg(t, "")
	var evs []models.Event
	for i := 0; i < 3; i++ {
		evs = append(evs, pgtest.WriteEvents(t, db, org, 4)...)
	}
	var rows int
	db.Raw(`SELECT count(*) FROM audit_leaf_queue WHERE organization_id = ?`, org).Scan(&rows)
	if rows != 3 {
		t.Fatalf("%d queue rows for 3 writes", rows)
	}
	for _, want := range []int{8, 4, 0} { // 5 asked: the second write crosses it, the third waits
		res, err := l.Sequence(ctx, 5)
		if err != nil {
			t.Fatal(err)
		}
		if res.Leaves != want {
			t.Fatalf("sequenced %d events, want %d", res.Leaves, want)
		}
	}
	for i, ev := range evs {
		leaf, err := l.Leaf(ctx, org, ev.ID)
		if err != nil || leaf.LeafIndex != int64(i) {
			t.Fatalf("event %d: leaf %+v, %v; want index %d", i, leaf, err, i)
		}
	}
}

// bypass runs sql as the superuser with triggers off: the attacker with database access.
func bypass(t *testing.T, db *gorm.DB, sql string, args ...any) {
	t.Helper()
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SET LOCAL session_replication_role = replica`).Error; err != nil {
			return err
		}
		return tx.Exec(sql, args...).Error
	})
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestCheckOrgDetectsTampering(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	key := testCheckpointKey(t)
	// want is a finding the check must report: its kind and the event it names (by index
	// into the organization's events; anyAt for a finding about no particular event).
	type want struct {
		kind  string
		event int
	}
	const anyAt, forgedAt = -100, 100
	var forgedID int64 // the id the forged row got
	cases := []struct {
		name   string
		attack func(t *testing.T, org string, evs []models.Event)
		want   []want
	}{
		{"a changed field", func(t *testing.T, org string, evs []models.Event) {
			bypass(t, db, `UPDATE audit_log SET outcome_description = 'all fine' WHERE id = ?`, evs[3].ID)
		}, []want{{merkle.FindingTampered, 3}}},
		{"a changed field with its hash recomputed", func(t *testing.T, org string, evs []models.Event) {
			forged := evs[4]
			forged.Status = "failure"
			h, err := pgtest.Sealer(t).ContentHash(&forged)
			if err != nil {
				t.Fatal(err)
			}
			bypass(t, db, `UPDATE audit_log SET status = 'failure', hash = ? WHERE id = ?`, h, evs[4].ID)
		}, []want{{merkle.FindingTampered, 4}}},
		{"the newest rows deleted", func(t *testing.T, org string, evs []models.Event) {
			bypass(t, db, `DELETE FROM audit_log WHERE id IN (?, ?)`, evs[len(evs)-1].ID, evs[len(evs)-2].ID)
		}, []want{{merkle.FindingMissing, 10}, {merkle.FindingMissing, 11}}},
		{"a row deleted before it was sequenced", func(t *testing.T, org string, evs []models.Event) {
			late := pgtest.WriteEvents(t, db, org, 1)
			bypass(t, db, `DELETE FROM audit_log WHERE id = ?`, late[0].ID)
		}, []want{{merkle.FindingMissing, anyAt}}},
		{"a forged row inserted", func(t *testing.T, org string, evs []models.Event) {
			if err := db.Raw(`SELECT nextval('audit_log_id_seq')`).Scan(&forgedID).Error; err != nil {
				t.Fatal(err)
			}
			bypass(t, db, `INSERT INTO audit_log (id, "timestamp", organization_id, action, status, hash, hash_algorithm,
				event_version, data_classification, retention_policy, subject_digest, signature)
				SELECT ?, "timestamp", organization_id, 'auth.login.success', status, hash, hash_algorithm,
				event_version, data_classification, retention_policy, subject_digest, signature FROM audit_log WHERE id = ?`,
				forgedID, evs[0].ID)
		}, []want{{merkle.FindingTampered, forgedAt}, {merkle.FindingInserted, forgedAt}}},
		{"a log entry removed", func(t *testing.T, org string, evs []models.Event) {
			bypass(t, db, `DELETE FROM audit_leaf WHERE organization_id = ? AND leaf_index = 7`, org)
		}, []want{{merkle.FindingInserted, 7}, {merkle.FindingLog, anyAt}, {merkle.FindingCheckpoint, anyAt}}},
		{"a checkpoint re-signed by someone else", func(t *testing.T, org string, evs []models.Event) {
			bypass(t, db, `UPDATE audit_checkpoint SET note = replace(note, '— auditdb ', '— auditdb x') WHERE organization_id = ? AND number = 1`, org)
		}, []want{{merkle.FindingCheckpoint, anyAt}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := merkle.NewLog(db, key)
			l.CheckpointEvery = 0
			org := pgtest.NewOrg(t, "")
			evs := pgtest.WriteEvents(t, db, org, 6)
			sequenceAll(t, l)
			evs = append(evs, pgtest.WriteEvents(t, db, org, 6)...)
			sequenceAll(t, l)
			checker := merkle.NewVerifier(db, pgtest.Sealer(t), l)
			if rep, err := checker.CheckOrg(ctx, org); err != nil || !rep.OK() {
				t.Fatalf("before the attack: %+v %v", rep, err)
			}
			tc.attack(t, org, evs)
			rep, err := checker.CheckOrg(ctx, org)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatal("the attack went unnoticed")
			}
			for _, w := range tc.want {
				var id int64
				switch w.event {
				case anyAt:
				case forgedAt:
					id = forgedID
				default:
					id = evs[w.event].ID
				}
				found := false
				for _, f := range rep.Findings {
					found = found || (f.Kind == w.kind && (w.event == anyAt || f.EventID == id))
				}
				if !found {
					t.Errorf("no %s finding for event %d in %+v", w.kind, w.event, rep.Findings)
				}
			}
		})
	}
}
