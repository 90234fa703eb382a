package jobs_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"auditdb/jobs"
	"auditdb/models"
	"auditdb/models/ingest"
)

// Two instances' detection job bodies running at once over the same database read every
// event once and raise each alert once.
func TestDetectionJobsOnTwoInstancesRaiseEachAlertOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	org, _ := f.org(t, "detect", 0)
	now := time.Now().UTC()
	principals := []string{"dr.smith", "nurse.jo", "admin.kim"}
	var evs []models.Event
	for i := range 300 {
		who := principals[i%3]
		e := models.Event{OrganizationID: org, Timestamp: now.Add(-time.Duration(i) * time.Second), Action: "auth.login.failure",
			Status: "failure", DataClassification: "INTERNAL", RetentionPolicy: "standard", EventVersion: "1.0", PrincipalID: &who}
		if err := f.sealer.Seal(&e); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	if _, err := ingest.CopyEvents(ctx, f.db, models.NewPartitionManager(f.db), evs); err != nil {
		t.Fatal(err)
	}
	if err := jobs.SequenceLog(f.log, time.Minute, quiet())(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		run := jobs.Detect(models.NewDetector(f.db, nil).WithBatch(20), time.Minute)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 { // a few scheduled runs each
				if err := run(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var alerts, counted int64
	f.db.Raw(`SELECT count(*) FROM alerts WHERE organization_id = ? AND rule = ?`, org, models.RuleFailedLogins).Scan(&alerts)
	f.db.Raw(`SELECT coalesce(sum(events), 0) FROM event_counts_hourly WHERE organization_id = ?`, org).Scan(&counted)
	if alerts != int64(len(principals)) || counted != int64(len(evs)) {
		t.Fatalf("%d alerts and %d events counted; want one alert per principal (%d) and %d events", alerts, counted, len(principals), len(evs))
	}
}
