// Package demo seeds demonstration organizations, users (random passwords, shown once) and a
// reproducible stream of sealed audit events for trying the console and for benchmarks.
package demo

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/ingest"
)

// Org is one organization Seed creates.
type Org struct {
	ID, Name string
	Share    float64 // fraction of the demo events that belong to it
}

// Orgs are the organizations of the demo data set.
var Orgs = []Org{
	{"acme-health", "Acme Health System", 0.7},
	{"northwind-clinic", "Northwind Clinic", 0.3},
}

// DefaultEvents is how many events Seed writes when Options.Events is zero.
const DefaultEvents = 50_000

// demoBatchSize is the number of events per COPY.
const demoBatchSize = 10_000

// demoWriters is how many COPYs run at once, each on its own connection: one backend inserts
// while the other waits for its commit to reach the WAL. A million events took 27-45 s on a
// shared 2-core machine (one writer: 30-48 s; the spread is other load).
const demoWriters = 2

// demoLockKey is the pg_advisory_lock key that serializes concurrent demo seeding.
const demoLockKey = 72_000_003

// Options tune Seed.
type Options struct {
	Events int       // how many events to write; DefaultEvents when zero
	Now    time.Time // the end of the twelve months the events cover; time.Now() when zero
	Seed   int64     // seeds the event generator: the same seed and Now give the same events
}

// Credential is a demo user created by this call, with its password in clear (shown once).
// The superadmin's has no OrgID and the role SuperadminRole.
type Credential struct {
	OrgID, Email, Password, Role string
}

// SuperadminEmail is the demo's superadmin, who sees every organization and manages them
// on /orgs.
const SuperadminEmail = "superadmin@auditdb.example"

// SuperadminRole is the Role of the superadmin's Credential (no organization role).
const SuperadminRole = "superadmin"

// Result reports what Seed did.
type Result struct {
	Orgs          []string
	Credentials   []Credential // only the users created by this call
	EventsWritten int64
	Skipped       string // why no events were written, when none were
}

// Seed fills the database with a demo data set: the default policies and roles, two
// healthcare organizations with an admin and a member each, and opts.Events sealed events
// spread over the twelve months before opts.Now. It is idempotent: existing organizations
// and users are kept (users keep their passwords and are not listed again), and no events
// are added when a demo organization already has some (Skipped then says so). Events are
// generated and sealed by a few goroutines while demoWriters writers copy them in batches of
// 10,000, one transaction each; on error the batches already committed stay, EventsWritten
// counts them, and a later call skips the events.
func Seed(ctx context.Context, db *gorm.DB, sealer *models.Sealer, parts *models.PartitionManager, opts Options) (Result, error) {
	if opts.Events < 0 {
		return Result{}, models.Invalid("events", "must not be negative")
	}
	if opts.Events == 0 {
		opts.Events = DefaultEvents
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	var res Result
	// One session holds the advisory lock for the whole run, so two seeders started at once
	// cannot both find "no events yet" and write the data set twice.
	err := db.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		if err := conn.Exec("SELECT pg_advisory_lock(?)", demoLockKey).Error; err != nil {
			return fmt.Errorf("demo: demo lock: %w", err)
		}
		// Unlock even when ctx is cancelled: the connection goes back to the pool.
		defer conn.WithContext(context.WithoutCancel(ctx)).Exec("SELECT pg_advisory_unlock(?)", demoLockKey)
		var err error
		res, err = seedDemo(ctx, db, sealer, parts, opts)
		return err
	})
	return res, err
}

func seedDemo(ctx context.Context, db *gorm.DB, sealer *models.Sealer, parts *models.PartitionManager, opts Options) (Result, error) {
	var res Result
	if err := models.SeedDefaults(ctx, db); err != nil {
		return res, err
	}
	orgs := models.NewOrgStore(db)
	users := models.NewUserStore(db)
	for _, o := range Orgs {
		if _, err := orgs.Create(ctx, o.ID, o.Name); err != nil && models.KindOf(err) != models.KindConflict {
			return res, err
		}
		res.Orgs = append(res.Orgs, o.ID)
		for _, role := range []string{models.OwnerRole, "org:admin", "org:member"} {
			email := role[len("org:"):] + "@" + o.ID + ".example"
			cred, err := ensureDemoUser(ctx, db, users, o.ID, email, role)
			if err != nil {
				return res, err
			}
			if cred != nil {
				res.Credentials = append(res.Credentials, *cred)
			}
		}
		if o.ID == Orgs[0].ID {
			// A privacy officer beside the owner: two holders of audit.gdpr, so an erasure
			// filed by one can be approved by the other (four eyes).
			cred, err := ensureDemoUser(ctx, db, users, o.ID, "dpo@"+o.ID+".example", models.OwnerRole)
			if err != nil {
				return res, err
			}
			if cred != nil {
				res.Credentials = append(res.Credentials, *cred)
			}
		}
	}
	cred, err := ensureDemoUser(ctx, db, users, "", SuperadminEmail, SuperadminRole)
	if err != nil {
		return res, err
	}
	if cred != nil {
		res.Credentials = append(res.Credentials, *cred)
	}

	for _, org := range res.Orgs {
		var has bool
		err := db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM audit_log WHERE organization_id = ?)`, org).Scan(&has).Error
		if err != nil {
			return res, fmt.Errorf("demo: look for demo events: %w", err)
		}
		if has {
			res.Skipped = fmt.Sprintf("demo events were not written: organization %s already has events", org)
			return res, nil
		}
	}
	n, err := writeDemoEvents(ctx, db, sealer, parts, opts)
	res.EventsWritten = n
	return res, err
}

// ensureDemoUser creates the demo user email with a fresh random password unless it exists;
// it returns the credential of a user it created, nil for an existing one. The role
// SuperadminRole (with no org) makes a superadmin.
func ensureDemoUser(ctx context.Context, db *gorm.DB, users *models.UserStore, org, email, role string) (*Credential, error) {
	var n int64
	if err := db.WithContext(ctx).Model(&models.User{}).Where("lower(email) = lower(?)", email).Count(&n).Error; err != nil {
		return nil, fmt.Errorf("demo: look up demo user: %w", err)
	}
	if n > 0 {
		return nil, nil
	}
	password, err := models.RandomPassword(20)
	if err != nil {
		return nil, err
	}
	nu := models.NewUser{Email: email, Name: demoUserName(role, org), Password: password, OrgID: org, Role: role}
	if role == SuperadminRole {
		nu = models.NewUser{Email: email, Name: "Demo superadmin", Password: password, Superadmin: true}
	}
	_, err = users.Create(ctx, nu)
	if models.KindOf(err) == models.KindConflict {
		return nil, nil // created meanwhile by someone else: theirs stands
	}
	if err != nil {
		return nil, err
	}
	return &Credential{OrgID: org, Email: email, Password: password, Role: role}, nil
}

func demoUserName(role, org string) string {
	for _, o := range Orgs {
		if o.ID == org {
			org = o.Name
		}
	}
	switch role {
	case models.OwnerRole:
		return org + " owner"
	case "org:admin":
		return org + " administrator"
	}
	return org + " member"
}

// writeDemoEvents generates, seals and copies opts.Events events: producers generate and
// seal whole batches while demoWriters writers COPY them, each batch in its own transaction.
// Batch k is generated from its own generator seeded with (opts.Seed, k), so the data set
// does not depend on which goroutine made which batch.
func writeDemoEvents(ctx context.Context, db *gorm.DB, sealer *models.Sealer, parts *models.PartitionManager, opts Options) (int64, error) {
	batches := (opts.Events + demoBatchSize - 1) / demoBatchSize
	workers := max(1, min(runtime.GOMAXPROCS(0), 4))
	gen := newDemoGenerator(opts.Now)
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan int)
	sealed := make(chan []models.Event, workers)
	g.Go(func() error {
		defer close(jobs)
		for k := 0; k < batches; k++ {
			select {
			case jobs <- k:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	var producers sync.WaitGroup
	for w := 0; w < workers; w++ {
		producers.Add(1)
		g.Go(func() error {
			defer producers.Done()
			for k := range jobs {
				batch := gen.batch(opts.Seed, k, min(demoBatchSize, opts.Events-k*demoBatchSize))
				for i := range batch {
					if err := sealer.Seal(&batch[i]); err != nil {
						return err
					}
				}
				// In time order the rows of one COPY land in few partitions and adjacent index pages.
				slices.SortFunc(batch, func(a, b models.Event) int { return a.Timestamp.Compare(b.Timestamp) })
				select {
				case sealed <- batch:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		producers.Wait()
		close(sealed)
		return nil
	})
	var written atomic.Int64
	for w := 0; w < demoWriters; w++ {
		g.Go(func() error {
			for batch := range sealed {
				n, err := ingest.CopyEvents(gctx, db, parts, batch)
				written.Add(n)
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return written.Load(), fmt.Errorf("demo: seed demo events: %w", err)
	}
	return written.Load(), nil
}

// demoTenant is the cast of one demo organization.
type demoTenant struct {
	id          string
	clinicians  []string
	admins      []string
	compliance  []string
	services    []string
	patients    int    // size of the patient panel
	subnet      string // first two octets of the workstations' addresses
	workstation string // workstation name prefix
}

var demoTenants = []demoTenant{
	{
		id: "acme-health",
		clinicians: []string{"dr.jane.smith", "dr.omar.haddad", "dr.li.wei", "dr.sarah.oconnor", "dr.raj.patel",
			"dr.maria.gonzalez", "nurse.kim", "nurse.rodriguez", "nurse.baker", "nurse.okafor", "nurse.schmidt",
			"np.alvarez", "pa.johnson", "pharm.nguyen", "lab.tech.morris", "rad.tech.singh", "frontdesk.miller"},
		admins:      []string{"admin.chen", "it.admin.jones"},
		compliance:  []string{"privacy.officer.grant", "compliance.lee"},
		services:    []string{"svc-ehr-integration", "svc-hl7-interface", "svc-billing-sync", "svc-lab-results"},
		patients:    25_000,
		subnet:      "10.20.",
		workstation: "ACME",
	},
	{
		id:          "northwind-clinic",
		clinicians:  []string{"dr.amy.foster", "dr.ben.carter", "dr.kofi.mensah", "nurse.diaz", "nurse.thompson", "ma.wilson", "pharm.ito", "frontdesk.green"},
		admins:      []string{"admin.park"},
		compliance:  []string{"compliance.hughes"},
		services:    []string{"svc-nw-ehr-sync", "svc-nw-lab-feed"},
		patients:    6_000,
		subnet:      "10.40.",
		workstation: "NW",
	},
}

var (
	demoDepartments   = []string{"ED", "ICU", "MED", "SURG", "PEDS", "ONC", "RAD", "LAB", "PHARM", "CLINIC"}
	demoBrowserAgents = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
		"Epic Hyperspace/10.2 (Windows NT 10.0; Citrix Workspace)",
	}
	demoServiceAgents = []string{"HAPI-FHIR-Client/6.10.0", "Mirth-Connect/4.5.0", "Go-http-client/2.0"}
	demoAttackers     = []string{"admin", "administrator", "jsmith", "test", "root", "dr.smith"}
	demoClinicalRead  = []string{"Patient", "Patient", "Patient", "Encounter", "Observation", "Condition", "DiagnosticReport", "MedicationRequest"}
	demoVitals        = []string{"blood pressure 128/82 mmHg", "heart rate 76 bpm", "SpO2 97%", "temperature 37.8 °C",
		"respiratory rate 18/min", "weight 82.4 kg", "pain score 4/10", "blood glucose 142 mg/dL"}
	demoLabOrders = []string{"comprehensive metabolic panel", "complete blood count", "HbA1c", "lipid panel",
		"troponin I", "urinalysis", "chest X-ray", "CT head without contrast", "blood culture x2"}
	demoMedications = []string{"amoxicillin 500 mg PO TID", "metformin 1000 mg PO BID", "lisinopril 10 mg PO daily",
		"atorvastatin 40 mg PO nightly", "heparin 5000 units SC q8h", "ondansetron 4 mg IV PRN", "morphine 2 mg IV q4h PRN"}
	demoReports = []string{"HIPAA access audit", "monthly PHI disclosure log", "failed sign-in summary",
		"user access review", "quality measures (CMS-122)"}
	demoExports = []string{"encounter records for quality reporting", "claims extract for the billing vendor",
		"patient list for a care-management outreach", "immunization records for the state registry",
		"de-identified research extract (IRB-approved)"}
)

// demoGenerator makes the demo events; it is read-only after construction, so the workers
// share one.
type demoGenerator struct {
	now, from time.Time
	days      int
	clinic    *time.Location // the clinics' wall clock, for the weekday/daytime bias
}

func newDemoGenerator(now time.Time) *demoGenerator {
	from := now.AddDate(-1, 0, 0)
	return &demoGenerator{now: now, from: from, days: int(now.Sub(from).Hours()/24) + 1,
		clinic: time.FixedZone("clinic", -5*3600)}
}

// demoBatch is the state of generating one batch.
type demoBatch struct {
	*demoGenerator
	rng    *mrand.Rand
	events []models.Event
	size   int
}

// batch returns batch k (size events) of the data set seeded with seed.
func (g *demoGenerator) batch(seed int64, k, size int) []models.Event {
	b := &demoBatch{demoGenerator: g, rng: mrand.New(mrand.NewPCG(uint64(seed), uint64(k))),
		events: make([]models.Event, 0, size), size: size}
	for len(b.events) < b.size {
		b.session()
	}
	return b.events
}

// session is one principal's sitting: a few events sharing a correlation id, a session id,
// an address and a user agent, seconds to minutes apart.
type demoSession struct {
	tenant      *demoTenant
	principal   string
	t           time.Time
	correlation string
	details     demoDetails
}

type demoDetails struct {
	IP          string          `json:"ip"`
	UserAgent   string          `json:"userAgent"`
	SessionID   string          `json:"sessionId,omitempty"`
	Method      string          `json:"method,omitempty"`
	Path        string          `json:"path,omitempty"`
	Workstation string          `json:"workstation,omitempty"`
	Reason      string          `json:"reason,omitempty"`
	Export      *demoExport     `json:"export,omitempty"`
	Change      *demoRoleChange `json:"change,omitempty"`
	FHIRVersion string          `json:"fhirVersion,omitempty"`
}

type demoExport struct {
	Format      string `json:"format"`
	RecordCount int    `json:"recordCount"`
	Destination string `json:"destination"`
}

type demoRoleChange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

func (b *demoBatch) pick(list []string) string { return list[b.rng.IntN(len(list))] }

func (b *demoBatch) chance(p float64) bool { return b.rng.Float64() < p }

func (b *demoBatch) between(lo, hi int) int { return lo + b.rng.IntN(hi-lo+1) }

func (b *demoBatch) hexID(n int) string {
	var buf [16]byte
	for i := 0; i < (n+1)/2; i++ {
		buf[i] = byte(b.rng.Uint32())
	}
	return hex.EncodeToString(buf[:(n+1)/2])[:n]
}

func (b *demoBatch) uuid() string {
	var u [16]byte
	for i := range u {
		u[i] = byte(b.rng.Uint32())
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// start picks a session start in the last twelve months: weekdays three times as likely as
// weekend days, and most sessions in clinic hours (07:00-19:00), some at night.
func (b *demoBatch) start() time.Time {
	for {
		day := b.from.In(b.clinic).AddDate(0, 0, b.rng.IntN(b.days))
		if wd := day.Weekday(); (wd == time.Saturday || wd == time.Sunday) && b.chance(2.0/3) {
			continue
		}
		var hour int
		if b.chance(0.88) {
			hour = 7 + b.rng.IntN(6) + b.rng.IntN(7) // 07-18, peaking around noon
		} else {
			hour = b.rng.IntN(24)
		}
		t := time.Date(day.Year(), day.Month(), day.Day(), hour, b.rng.IntN(60), b.rng.IntN(60),
			b.rng.IntN(1_000_000)*1000, b.clinic)
		if t.Before(b.from) || !t.Before(b.now.Add(-2*time.Hour)) {
			continue // sessions run up to about an hour; keep them all in the past
		}
		return t
	}
}

func (b *demoBatch) tenant() *demoTenant {
	if b.chance(Orgs[0].Share) {
		return &demoTenants[0]
	}
	return &demoTenants[1]
}

func (b *demoBatch) newSession(t *demoTenant, principal string, service bool) *demoSession {
	s := &demoSession{tenant: t, principal: principal, t: b.start(), correlation: b.uuid()}
	s.details.IP = t.subnet + strconv.Itoa(b.between(1, 254)) + "." + strconv.Itoa(b.between(1, 254))
	if service {
		s.details.UserAgent = b.pick(demoServiceAgents)
		s.details.FHIRVersion = "4.0.1"
	} else {
		s.details.UserAgent = b.pick(demoBrowserAgents)
		s.details.SessionID = "sess-" + b.hexID(24)
		s.details.Workstation = fmt.Sprintf("%s-%s-WS%02d", t.workstation, b.pick(demoDepartments), b.between(1, 40))
	}
	return s
}

// session appends one session's events (stopping early when the batch is full).
func (b *demoBatch) session() {
	t := b.tenant()
	switch r := b.rng.Float64(); {
	case r < 0.58:
		b.clinicalSession(t)
	case r < 0.74:
		b.serviceSession(t)
	case r < 0.82:
		b.failedLogins(t)
	case r < 0.87:
		b.adminSession(t)
	case r < 0.92:
		b.complianceSession(t)
	case r < 0.96:
		b.unauthorizedSession(t)
	default:
		b.healthChecks(t)
	}
}

func (b *demoBatch) clinicalSession(t *demoTenant) {
	s := b.newSession(t, b.pick(t.clinicians), false)
	b.login(s)
	for n := b.between(2, 10); n > 0; n-- {
		b.clinicalAction(s)
	}
	if b.chance(0.75) {
		b.logout(s)
	}
}

// clinicalAction is one step of a clinician's work, by what the role does: prescribers read,
// chart, order; nurses read and record vitals; pharmacists work medication orders; lab and
// imaging staff file results; the front desk keeps demographics and insurance current.
func (b *demoBatch) clinicalAction(s *demoSession) {
	r := b.rng.Float64()
	role, _, _ := strings.Cut(s.principal, ".")
	switch role {
	case "nurse", "ma":
		switch {
		case r < 0.5:
			b.readRecord(s, demoClinicalRead)
		case r < 0.85:
			b.createObservation(s)
		default:
			b.updateRecord(s)
		}
	case "pharm":
		if r < 0.6 {
			b.readRecord(s, []string{"MedicationRequest", "MedicationRequest", "Patient", "Observation"})
		} else {
			b.orderMedication(s)
		}
	case "lab", "rad":
		if r < 0.5 {
			b.createObservation(s)
		} else {
			b.readRecord(s, []string{"DiagnosticReport"})
		}
	case "frontdesk":
		if r < 0.6 {
			b.readRecord(s, []string{"Patient", "Patient", "Encounter"})
		} else {
			b.updateRecord(s)
		}
	default: // physicians, nurse practitioners, physician assistants
		switch {
		case r < 0.55:
			b.readRecord(s, demoClinicalRead)
		case r < 0.68:
			b.updateRecord(s)
		case r < 0.78:
			b.createObservation(s)
		case r < 0.9:
			b.orderMedication(s)
		default:
			b.orderLab(s)
		}
	}
}

func (b *demoBatch) serviceSession(t *demoTenant) {
	svc := b.pick(t.services)
	s := b.newSession(t, svc, true)
	for n := b.between(3, 12); n > 0; n-- {
		switch {
		case svc == "svc-hl7-interface" || svc == "svc-lab-results" || svc == "svc-nw-lab-feed":
			b.createObservation(s)
		case svc == "svc-billing-sync":
			b.readRecord(s, demoClinicalRead)
		default:
			if b.chance(0.5) {
				b.updateRecord(s)
			} else {
				b.readRecord(s, demoClinicalRead)
			}
		}
	}
}

// failedLogins is either a clinician mistyping a password (then usually getting in) or a
// burst of guesses at a common account name from outside: the pattern the failed-login
// alert looks for.
func (b *demoBatch) failedLogins(t *demoTenant) {
	if b.chance(0.7) {
		s := b.newSession(t, b.pick(t.clinicians), false)
		for n := b.between(1, 3); n > 0; n-- {
			b.loginFailure(s, b.pick([]string{"invalid_password", "invalid_password", "mfa_failed"}))
		}
		if b.chance(0.8) {
			b.login(s)
			b.readRecord(s, demoClinicalRead)
			b.logout(s)
		}
		return
	}
	s := b.newSession(t, b.pick(demoAttackers), false)
	s.details.IP = b.pick([]string{"203.0.113.", "198.51.100."}) + strconv.Itoa(b.between(1, 254)) // documentation ranges
	s.details.Workstation, s.details.SessionID = "", ""
	for n := b.between(5, 9); n > 0; n-- {
		reason := "unknown_user"
		if n == 1 && b.chance(0.5) {
			reason = "account_locked"
		}
		b.loginFailure(s, reason)
	}
}

func (b *demoBatch) adminSession(t *demoTenant) {
	s := b.newSession(t, b.pick(t.admins), false)
	b.login(s)
	for n := b.between(1, 3); n > 0; n-- {
		switch r := b.rng.Float64(); {
		case r < 0.6:
			b.changePermission(s)
		case r < 0.85:
			b.generateReport(s)
		default:
			b.export(s)
		}
	}
	b.logout(s)
}

func (b *demoBatch) complianceSession(t *demoTenant) {
	s := b.newSession(t, b.pick(t.compliance), false)
	b.login(s)
	b.generateReport(s)
	if b.chance(0.6) {
		b.export(s)
	}
	if b.chance(0.5) {
		b.readRecord(s, demoClinicalRead)
	}
	b.logout(s)
}

// unauthorizedSession is a clinician opening charts without a treatment relationship.
func (b *demoBatch) unauthorizedSession(t *demoTenant) {
	s := b.newSession(t, b.pick(t.clinicians), false)
	b.login(s)
	if b.chance(0.5) {
		b.readRecord(s, demoClinicalRead)
	}
	for n := b.between(1, 4); n > 0; n-- {
		b.unauthorized(s)
	}
	if b.chance(0.6) {
		b.logout(s)
	}
}

func (b *demoBatch) healthChecks(t *demoTenant) {
	s := b.newSession(t, "svc-monitoring", true)
	s.details.UserAgent = "kube-probe/1.29"
	s.details.FHIRVersion = ""
	for n := b.between(1, 3); n > 0; n-- {
		s.details.Method, s.details.Path = "GET", "/healthz"
		b.add(s, "system.health.check", "success", "PUBLIC", "", "", "Health check passed: database and cache reachable")
	}
}

func (b *demoBatch) patient(t *demoTenant) string {
	u := b.rng.Float64()
	return fmt.Sprintf("pat-%06d", 1+int(u*u*float64(t.patients))) // a few patients are seen far more often
}

func (b *demoBatch) resourceID(t *demoTenant, typ string) string {
	switch typ {
	case "Patient":
		return b.patient(t)
	case "Encounter":
		return fmt.Sprintf("enc-%07d", b.rng.IntN(2_000_000))
	case "Observation":
		return fmt.Sprintf("obs-%08d", b.rng.IntN(50_000_000))
	case "Condition":
		return fmt.Sprintf("cond-%07d", b.rng.IntN(3_000_000))
	case "DiagnosticReport":
		return fmt.Sprintf("dr-%07d", b.rng.IntN(4_000_000))
	case "MedicationRequest":
		return fmt.Sprintf("medreq-%07d", b.rng.IntN(5_000_000))
	case "Practitioner":
		return fmt.Sprintf("prac-%05d", b.rng.IntN(3_000))
	}
	return b.hexID(12)
}

func (b *demoBatch) fhir(s *demoSession, method, typ, id string) {
	s.details.Method = method
	s.details.Path = "/fhir/r4/" + typ
	if method != "POST" {
		s.details.Path += "/" + id
	}
}

func (b *demoBatch) login(s *demoSession) {
	s.details.Method, s.details.Path, s.details.Reason = "POST", "/auth/login", ""
	b.add(s, "auth.login.success", "success", "INTERNAL", "", "",
		b.pick([]string{"Signed in with password and MFA", "Signed in via SSO (SAML)", "Signed in with badge tap and PIN"}))
}

func (b *demoBatch) loginFailure(s *demoSession, reason string) {
	s.details.Method, s.details.Path, s.details.Reason = "POST", "/auth/login", reason
	msg := map[string]string{
		"invalid_password": "Sign-in rejected: invalid password",
		"mfa_failed":       "Sign-in rejected: MFA code did not match",
		"unknown_user":     "Sign-in rejected: unknown user name",
		"account_locked":   "Sign-in rejected: account locked after repeated failures",
	}[reason]
	b.add(s, "auth.login.failure", "failure", "INTERNAL", "", "", msg)
	s.details.Reason = ""
}

func (b *demoBatch) logout(s *demoSession) {
	s.details.Method, s.details.Path = "POST", "/auth/logout"
	b.add(s, "auth.logout", "success", "INTERNAL", "", "",
		b.pick([]string{"Signed out", "Session ended after 15 minutes of inactivity"}))
}

func (b *demoBatch) readRecord(s *demoSession, types []string) {
	typ := b.pick(types)
	id := b.resourceID(s.tenant, typ)
	b.fhir(s, "GET", typ, id)
	msg := map[string]string{
		"Patient":           "Viewed patient chart summary",
		"Encounter":         "Viewed encounter notes",
		"Observation":       "Viewed observation results",
		"Condition":         "Viewed problem list entry",
		"DiagnosticReport":  "Viewed diagnostic report",
		"MedicationRequest": "Viewed medication order",
	}[typ]
	b.add(s, "patient.record.read", "success", "PHI", typ, id, msg+" "+id)
}

func (b *demoBatch) updateRecord(s *demoSession) {
	typ := "Patient"
	if role, _, _ := strings.Cut(s.principal, "."); role != "frontdesk" && b.chance(0.5) {
		typ = b.pick([]string{"Condition", "Encounter"})
	}
	id := b.resourceID(s.tenant, typ)
	b.fhir(s, "PUT", typ, id)
	msg := map[string]string{
		"Patient":   b.pick([]string{"Updated allergy list", "Updated contact details", "Updated insurance coverage"}),
		"Condition": "Updated problem list entry",
		"Encounter": "Signed encounter note",
	}[typ]
	b.add(s, "patient.record.update", "success", "PHI", typ, id, msg+" for "+id)
}

func (b *demoBatch) createObservation(s *demoSession) {
	id := b.resourceID(s.tenant, "Observation")
	b.fhir(s, "POST", "Observation", id)
	b.add(s, "observation.create", "success", "PHI", "Observation", id,
		"Recorded "+b.pick(demoVitals)+" for "+b.patient(s.tenant))
}

func (b *demoBatch) orderMedication(s *demoSession) {
	id := b.resourceID(s.tenant, "MedicationRequest")
	b.fhir(s, "POST", "MedicationRequest", id)
	med := b.pick(demoMedications)
	if b.chance(0.06) {
		b.add(s, "medication.order.create", "failure", "PHI", "MedicationRequest", id,
			"Order for "+med+" blocked: drug interaction alert not overridden")
		return
	}
	b.add(s, "medication.order.create", "success", "PHI", "MedicationRequest", id, "Ordered "+med)
}

func (b *demoBatch) orderLab(s *demoSession) {
	id := b.resourceID(s.tenant, "DiagnosticReport")
	b.fhir(s, "POST", "DiagnosticReport", id)
	b.add(s, "order.create", "success", "PHI", "DiagnosticReport", id,
		"Placed order: "+b.pick(demoLabOrders)+" for "+b.patient(s.tenant))
}

func (b *demoBatch) export(s *demoSession) {
	s.details.Method, s.details.Path = "POST", "/exports"
	s.details.Export = &demoExport{Format: b.pick([]string{"CSV", "CSV", "JSON", "XML"}),
		RecordCount: b.between(20, 25_000), Destination: b.pick([]string{"download", "sftp", "s3"})}
	what := b.pick(demoExports)
	if b.chance(0.15) {
		b.add(s, "data.export", "attempt", "CONFIDENTIAL", "", "", "Export requested, awaiting privacy officer approval: "+what)
	} else {
		b.add(s, "data.export", "success", "CONFIDENTIAL", "", "",
			fmt.Sprintf("Exported %d %s as %s", s.details.Export.RecordCount, what, s.details.Export.Format))
	}
	s.details.Export = nil
}

func (b *demoBatch) generateReport(s *demoSession) {
	s.details.Method, s.details.Path = "POST", "/reports"
	b.add(s, "report.generate", "success", "INTERNAL", "", "",
		"Generated "+b.pick(demoReports)+" report for "+s.t.AddDate(0, -1, 0).Format("January 2006"))
}

func (b *demoBatch) changePermission(s *demoSession) {
	id := b.resourceID(s.tenant, "Practitioner")
	user := b.pick(s.tenant.clinicians)
	change := b.pick([]string{"org:member>org:admin", "org:admin>org:member", "none>org:member", "org:member>none"})
	from, to, _ := strings.Cut(change, ">")
	s.details.Method, s.details.Path = "PUT", "/admin/members/"+user
	s.details.Change = &demoRoleChange{From: from, To: to}
	b.add(s, "user.permission.change", "success", "INTERNAL", "Practitioner", id,
		"Changed role of "+user+" from "+from+" to "+to)
	s.details.Change = nil
}

func (b *demoBatch) unauthorized(s *demoSession) {
	id := b.patient(s.tenant)
	b.fhir(s, "GET", "Patient", id)
	s.details.Reason = b.pick([]string{"no_treatment_relationship", "restricted_vip_record", "break_the_glass_declined"})
	b.add(s, "data.access.unauthorized", "failure", "PHI", "Patient", id,
		"Access denied to "+id+": "+strings.ReplaceAll(s.details.Reason, "_", " "))
	s.details.Reason = ""
}

// demoRetention maps a classification to the seeded retention policy that covers it.
var demoRetention = map[string]string{
	"PHI": "phi_extended", "INTERNAL": "standard", "CONFIDENTIAL": "confidential", "PUBLIC": "minimal",
}

// add appends one event of session s, then moves the session's clock on.
func (b *demoBatch) add(s *demoSession, action, status, class, resType, resID, outcome string) {
	if len(b.events) >= b.size {
		return
	}
	details, _ := json.Marshal(&s.details) // a struct of strings and ints cannot fail
	principal, org, corr, out := s.principal, s.tenant.id, s.correlation, outcome
	latency := int32(b.between(2, 180))
	ev := models.Event{
		Timestamp:          s.t,
		PrincipalID:        &principal,
		OrganizationID:     org,
		Action:             action,
		Status:             status,
		OutcomeDescription: &out,
		CorrelationID:      &corr,
		DataClassification: class,
		RetentionPolicy:    demoRetention[class],
		EventVersion:       "1.0",
		ProcessingLatency:  &latency,
		Details:            details,
	}
	if resType != "" {
		ev.TargetResourceType, ev.TargetResourceID = &resType, &resID
	}
	b.events = append(b.events, ev)
	s.t = s.t.Add(time.Duration(b.between(4, 240))*time.Second + time.Duration(b.rng.IntN(1_000_000))*time.Microsecond)
}
