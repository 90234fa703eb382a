package web_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web/webtest"
)

// TestFaultDatabaseRestartDuringIngest stops PostgreSQL in the middle of a sustained ingest
// run and starts it again. Clients see 503s meanwhile and retry with the same
// Idempotency-Key; the server stays up and resumes by itself; every event answered 201 is
// in the table exactly once, and the organization still verifies end to end.
//
// It restarts a whole PostgreSQL cluster, so it runs only with AUDITDB_FAULT_TESTS=1.
// AUDITDB_FAULT_CLUSTER names the cluster for pg_ctlcluster ("15 main" by default); point
// AUDITDB_TEST_DATABASE_URL at the same cluster. See scripts/fault-ingest.sh.
func TestFaultDatabaseRestartDuringIngest(t *testing.T) {
	if os.Getenv("AUDITDB_FAULT_TESTS") != "1" {
		t.Skip("restarts PostgreSQL: set AUDITDB_FAULT_TESTS=1 (see scripts/fault-ingest.sh)")
	}
	cluster := strings.Fields(os.Getenv("AUDITDB_FAULT_CLUSTER"))
	if len(cluster) == 0 {
		cluster = []string{"15", "main"}
	}
	if len(cluster) != 2 {
		t.Fatal("AUDITDB_FAULT_CLUSTER must be '<version> <name>'")
	}
	env := webtest.New(t)
	base := env.Serve()
	org := env.Org("fault")
	key := env.APIKey(org, models.ScopeIngest)
	client := &http.Client{Timeout: 30 * time.Second}

	var acked sync.Map // correlation id → true, for each event answered 201
	var created, unavailable, throttled, other atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	worker := func(w int) {
		defer wg.Done()
		for seq := 0; ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			// Every fourth request is a batch of five; each request is retried with its key
			// until it is answered 201.
			id := fmt.Sprintf("fault-%d-%d", w, seq)
			path, body, ids := "/api/v1/events", fmt.Sprintf(`{"action":"fault.test","status":"success","correlationId":%q}`, id), []string{id}
			if seq%4 == 3 {
				var evs []string
				ids = nil
				for j := 0; j < 5; j++ {
					ids = append(ids, fmt.Sprintf("%s-%d", id, j))
					evs = append(evs, fmt.Sprintf(`{"action":"fault.test","status":"success","correlationId":%q}`, ids[j]))
				}
				path, body = "/api/v1/events/batch", "["+strings.Join(evs, ",")+"]"
			}
			for attempt := 0; ; attempt++ {
				status, err := post(client, base+path, key, id, body)
				if err != nil {
					other.Add(1)
					t.Errorf("request failed outright (the server must stay up): %v", err)
					return
				}
				switch status {
				case http.StatusCreated:
					created.Add(1)
					for _, c := range ids {
						acked.Store(c, true)
					}
				case http.StatusServiceUnavailable, http.StatusTooManyRequests:
					if status == http.StatusServiceUnavailable {
						unavailable.Add(1)
					} else {
						throttled.Add(1)
					}
					time.Sleep(250 * time.Millisecond)
					if attempt < 200 {
						continue
					}
					t.Errorf("request %s never succeeded", id)
				default:
					other.Add(1)
					t.Errorf("request %s: unexpected status %d", id, status)
				}
				break
			}
		}
	}
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go worker(w)
	}

	time.Sleep(2 * time.Second)
	before := created.Load()
	pgctl(t, "stop", cluster, "-m", "fast")
	time.Sleep(3 * time.Second)
	during := created.Load()
	pgctl(t, "start", cluster)
	waitFor(t, 30*time.Second, "ingest to resume after the restart", func() bool { return created.Load() > during+50 })
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	t.Logf("201 answers: %d before the stop, %d in total; 503: %d; 429: %d", before, created.Load(), unavailable.Load(), throttled.Load())
	if before == 0 || unavailable.Load() == 0 {
		t.Fatalf("the run did not span the outage: %d acknowledged before it, %d 503s", before, unavailable.Load())
	}
	if r, err := client.Get(base + "/healthz"); err != nil || r.StatusCode != 200 {
		t.Fatalf("the server is not healthy after the restart: %v", err)
	}

	var rows []struct {
		CorrelationID string
		N             int
	}
	if err := env.DB.Raw(`SELECT correlation_id, count(*) AS n FROM audit_log
		WHERE organization_id = ? AND correlation_id LIKE 'fault-%' GROUP BY correlation_id`, org).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for _, r := range rows {
		stored[r.CorrelationID] = r.N
		if r.N != 1 {
			t.Errorf("event %s is in the table %d times", r.CorrelationID, r.N)
		}
	}
	ackedCount := 0
	acked.Range(func(k, _ any) bool {
		ackedCount++
		if stored[k.(string)] != 1 {
			t.Errorf("event %s was answered 201 but is in the table %d times", k, stored[k.(string)])
		}
		return true
	})
	t.Logf("%d acknowledged events, %d distinct events stored", ackedCount, len(stored))

	env.Sequence()
	rep, err := env.Services.Integrity.CheckOrg(context.Background(), org)
	if err != nil || !rep.OK() {
		t.Fatalf("after the restart the organization does not verify: %+v %v", rep, err)
	}
}

func post(client *http.Client, url, key, idempotencyKey, body string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idempotencyKey)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func pgctl(t *testing.T, action string, cluster []string, extra ...string) {
	t.Helper()
	args := append([]string{cluster[0], cluster[1], action}, extra...)
	if out, err := exec.Command("pg_ctlcluster", args...).CombinedOutput(); err != nil {
		t.Fatalf("pg_ctlcluster %v: %v: %s", args, err, out)
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
