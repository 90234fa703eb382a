package web

import (
	"context"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"auditdb/handlers"
	"auditdb/models"
	"auditdb/policy"
	"auditdb/static"
)

// route is one entry of the URL map: every route that needs a principal declares what it
// needs, and authorize enforces it before the handler runs.
type route struct {
	method, path string
	need         Need
	handler      fiber.Handler
}

// routes is the whole URL map of the console and API.
func routes(app *fiber.App, d *Services, a *assets) {
	app.Get("/robots.txt", robotsTxt)
	app.Use("/static", a.serve, filesystem.New(filesystem.Config{Root: http.FS(static.FS), MaxAge: 3600}),
		func(c *fiber.Ctx) error { return fiber.ErrNotFound })
	app.Get("/healthz", handlers.Health(models.Pinger(d.DB), d.Merkle.QueueLag, d.Detector))
	app.Get("/readyz", handlers.Ready(readiness(d)))
	metricsRoute(app, d.Metrics, d.TrustedProxies)

	tokens := handlers.NewLoginTokens(loginTokenKey(d.Sealer), d.Now)
	app.Get("/login", handlers.LoginPage(tokens))
	origin := sameOrigin(d.PublicURL, d.TrustedProxies)
	app.Post("/login", origin, loginCSRF(tokens), handlers.Login(d.Users, d.Sessions, loginLimits(d), tokens, d.Audit, d.Log))

	// The ingest and read API: the API-key middleware sets the request's principal (the
	// key's organization and scope), then each route is authorized like a console route.
	// The OpenAPI document is public.
	app.Get(apiPrefix+"/openapi.yaml", handlers.OpenAPI())
	// Bodies are decoded only once the key is known (see decodeConsoleBody).
	api := app.Group(apiPrefix, requireAPIKey(d.APIKeys), decodeBody(bodyLimit))
	keys := policy.KeyScoped(d.Authz)
	apiTable := apiRoutes(d)
	budget := queryBudget(d.StatementTimeout)
	long := queryBudget(downloadBudget)
	budgetOf := func(r route) fiber.Handler {
		if longRunning[r.method+" "+r.path] {
			return long
		}
		return budget
	}
	for _, r := range apiTable {
		if isIngest(r) {
			api.Add(r.method, r.path, authorize(keys, r.need), r.handler)
			continue
		}
		api.Add(r.method, r.path, budgetOf(r), authorize(keys, r.need), r.handler)
	}
	// Nothing under /api falls through to the console (and its sign-in redirect).
	app.Use("/api", apiFallback(append(apiTable, route{method: fiber.MethodGet, path: "/openapi.yaml"})))

	table := consoleRoutes(d)
	// Each route's query budget comes before the alert badge, whose count is one of the
	// page's queries.
	console := app.Group("", requireSession(d.Sessions, d.Authz, navNeeds(table)), origin, sessionCSRF)
	badge := d.AlertBadge.Middleware()
	for _, r := range table {
		console.Add(r.method, r.path, budgetOf(r), badge, authorize(d.Authz, r.need), r.handler)
	}

	app.Use(func(c *fiber.Ctx) error { return fiber.ErrNotFound })
}

// apiRoutes are the API's routes under /api/v1, in match order. An ingest key may create
// events; a read key may read, verify and prove them (see policy.ScopePermissions).
func apiRoutes(d *Services) []route {
	get, post := fiber.MethodGet, fiber.MethodPost
	ingest := handlers.Ingest{Builder: d.Builder, Sink: d.Writer, Answers: d.Answers, Now: d.Now}
	return []route{
		{post, "/events", Perm("audit.events", "create"), handlers.IngestEvent(ingest)},
		{post, "/events/batch", Perm("audit.events", "create"), handlers.IngestBatch(ingest)},
		{get, "/events", Perm("audit.events", "read"), handlers.APIListEvents(d.Events, d.Now)},
		{get, "/events/:id", Perm("audit.events", "read"), handlers.APIGetEvent(d.Events)},
		{post, "/events/:id/verify", Perm("audit.events", "verify"), handlers.APIVerifyEvent(d.Integrity)},
		{get, "/events/:id/proof", Perm("audit.events", "read"), handlers.APIEventProof(d.Events, d.Merkle)},
		{get, "/checkpoints/latest", Perm("audit.events", "read"), handlers.APILatestCheckpoint(d.Merkle)},
		{get, "/checkpoints/:size", Perm("audit.events", "read"), handlers.APICheckpoint(d.Merkle)},
		{get, "/proofs/consistency", Perm("audit.events", "read"), handlers.APIConsistencyProof(d.Merkle)},
		{get, "/alerts", Perm("audit.alerts", "read"), handlers.APIListAlerts(d.Alerts)},
		{post, "/reports", Perm("audit.reports", "read"), handlers.APIRunReport(reportDeps(d))},
		{get, "/reports/:id", Perm("audit.reports", "read"), handlers.APIGetReport(reportDeps(d))},
		{get, "/reports/:id/files/:format", Perm("audit.reports", "read"), handlers.APIDownloadReport(reportDeps(d))},
		{post, "/gdpr/requests", Perm("audit.gdpr", "create"), handlers.APICreateGDPRRequest(gdprDeps(d))},
		{get, "/gdpr/requests/:id", Perm("audit.gdpr", "read"), handlers.APIGetGDPRRequest(gdprDeps(d))},
	}
}

// gdprDeps are the GDPR area's parts.
func gdprDeps(d *Services) handlers.GDPRDeps {
	return handlers.GDPRDeps{Store: d.GDPR, Ops: d.GDPRRunner, People: gdprHolders{d}, Links: d.GDPRLinks, Audit: d.Audit, Now: d.Now}
}

// gdprHolders lists the members of an organization who may work its GDPR requests
// (audit.gdpr update), for the assignee list.
type gdprHolders struct{ d *Services }

func (h gdprHolders) GDPRHolders(ctx context.Context, org string) ([]models.Member, error) {
	members, err := h.d.Members.List(ctx, org)
	if err != nil {
		return nil, err
	}
	var out []models.Member
	for _, m := range members {
		ok, err := h.d.Authz.Allowed(ctx, policy.Subject{Name: policy.UserSubject(m.UserID)}, org, "audit.gdpr", "update")
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// downloadBudget is the query budget of the longRunning routes.
const downloadBudget = 10 * time.Minute

// longRunning are the routes that build a download while the client waits (an evidence
// bundle of up to a year, an archive read in full, a VACUUM): they get downloadBudget
// instead of the console's statement timeout, and still end when the client goes away.
var longRunning = map[string]bool{
	"GET /events/bundle": true,
	"GET /retention/archives/:policy/:month/:part/download.jsonl.zst": true,
	"GET /retention/archives/:policy/:month/:part/download.json":      true,
	"POST /performance/vacuum":                                        true,
}

// isIngest reports whether r takes events in: those requests run under the ingest
// writer's own budget, not a reader's statement timeout.
func isIngest(r route) bool {
	return r.method == fiber.MethodPost && r.need == Perm("audit.events", "create")
}

// reportDeps are the reports area's parts.
func reportDeps(d *Services) handlers.ReportDeps {
	return handlers.ReportDeps{Store: d.Reports, Runner: d.ReportRunner, Links: d.ReportLinks, Audit: d.Audit, Now: d.Now}
}

// loginLimits are the sign-in limiters, shared by the sign-in and password-change forms.
func loginLimits(d *Services) handlers.LoginLimits {
	return handlers.LoginLimits{PerAccount: d.LoginPerAccount, PerAddress: d.LoginPerAddress}
}

// consoleRoutes are the signed-in console's routes, in match order (fixed paths before
// parameters).
func consoleRoutes(d *Services) []route {
	get, post := fiber.MethodGet, fiber.MethodPost
	roles := handlers.RoleDeps{Roles: d.Roles}
	members := handlers.MemberDeps{Members: d.Members, Roles: d.Roles}
	alerts := handlers.AlertDeps{Alerts: d.Alerts, Events: d.Events, Deliveries: d.AlertDeliveries, Badge: d.AlertBadge}
	notify := handlers.NotificationDeps{Channels: d.Channels, Deliveries: d.Deliveries}
	retention := handlers.RetentionDeps{Store: d.RetentionPolicies, Now: d.Now}
	partitions := handlers.PartitionDeps{Partitions: d.PartitionConsole, Now: d.Now}
	rep := reportDeps(d)
	perf := handlers.PerfDeps{Perf: d.Perf, Cache: d.QueryCache, Health: d.Health, Now: d.Now}
	g := gdprDeps(d)
	return []route{
		{get, "/", SignedIn, handlers.Dashboard(handlers.DashboardSources{Events: d.Events, Invitations: d.Members,
			Figures: d.Figures, Checkpoints: d.Merkle, Detection: d.Detector, Now: d.Now})},
		{post, "/invitations/:id/accept", SignedIn, handlers.AcceptInvitation(d.Members, d.Sessions)},
		{post, "/invitations/:id/decline", SignedIn, handlers.DeclineInvitation(d.Members)},
		{post, "/logout", SignedIn, handlers.Logout(d.Sessions, d.Users, d.Audit, d.Log)},
		{post, "/session/org", SignedIn, handlers.SwitchOrg(d.Sessions)},
		{get, "/account", SignedIn, handlers.AccountPage()},
		{post, "/account/time-zone", SignedIn, handlers.SetTimeZone(d.Users)},
		{get, "/account/password", SignedIn, handlers.PasswordPage()},
		{post, "/account/password", SignedIn, handlers.ChangePassword(d.Users, d.Sessions, loginLimits(d))},

		{get, "/events", Perm("audit.events", "read"), handlers.ListEvents(d.Events, d.Events, d.Now)},
		{get, "/events/suggest", Perm("audit.events", "read"), handlers.SuggestEvents(d.Events, d.Now)},
		{get, "/events/summary", Perm("audit.events", "read"), handlers.EventsSummary(d.Events, d.Now)},
		{get, "/events/export.csv", Perm("audit.events", "export"), handlers.ExportEvents(d.Events, d.Audit, handlers.ExportCSV, d.Now)},
		{get, "/events/export.jsonl", Perm("audit.events", "export"), handlers.ExportEvents(d.Events, d.Audit, handlers.ExportJSONL, d.Now)},
		{get, "/events/bundle", Perm("audit.events", "export"), handlers.DownloadEvidenceBundle(d.Bundles, d.Audit, d.Now)},
		// Saved views are the viewer's own searches (and the ones shared with them): reading
		// events is all they need; only a view's owner changes it.
		{get, "/events/views", Perm("audit.events", "read"), handlers.SavedViewsPage(d.SavedViews, d.Now)},
		{post, "/events/views", Perm("audit.events", "read"), handlers.SaveView(d.SavedViews, d.Now)},
		{get, "/events/views/:id", Perm("audit.events", "read"), handlers.OpenView(d.SavedViews)},
		{post, "/events/views/:id", Perm("audit.events", "read"), handlers.UpdateView(d.SavedViews, d.Now)},
		{post, "/events/views/:id/delete", Perm("audit.events", "read"), handlers.DeleteView(d.SavedViews, d.Now)},
		{get, "/events/:id", Perm("audit.events", "read"), handlers.ShowEvent(d.Events, d.Integrity)},
		{post, "/events/:id/verify", Perm("audit.events", "verify"), handlers.VerifyEvent(d.Integrity, d.Integrity)},

		{get, "/roles", Perm("audit.roles", "read"), handlers.ListRoles(roles)},
		{get, "/roles/new", Perm("audit.roles", "create"), handlers.NewRole(roles)},
		{post, "/roles", Perm("audit.roles", "create"), handlers.CreateRole(roles)},
		{get, "/roles/:name", Perm("audit.roles", "read"), handlers.ShowRole(roles)},
		{get, "/roles/:name/edit", Perm("audit.roles", "update"), handlers.EditRole(roles)},
		{post, "/roles/:name", Perm("audit.roles", "update"), handlers.UpdateRole(roles)},
		{post, "/roles/:name/delete", Perm("audit.roles", "delete"), handlers.DeleteRole(roles)},

		{get, "/members", Perm("organization.members", "read"), handlers.ListMembers(members)},
		{post, "/members", Perm("organization.members", "create"), handlers.AddMember(members)},
		{post, "/members/:id/role", Perm("organization.members", "update"), handlers.SetMemberRole(members)},
		{post, "/members/:id/delete", Perm("organization.members", "delete"), handlers.RemoveMember(members)},

		{get, "/orgs", SuperadminOnly, handlers.ListOrgs(d.Orgs)},
		{post, "/orgs", SuperadminOnly, handlers.CreateOrg(d.Orgs)},

		{get, "/alerts", Perm("audit.alerts", "read"), handlers.ListAlerts(alerts)},
		{post, "/alerts/acknowledge", Perm("audit.alerts", "acknowledge"), handlers.AcknowledgeAlerts(alerts)},
		{get, "/alerts/:id", Perm("audit.alerts", "read"), handlers.ShowAlert(alerts)},
		{post, "/alerts/:id/acknowledge", Perm("audit.alerts", "acknowledge"), handlers.AcknowledgeAlert(alerts)},
		{post, "/alerts/:id/resolve", Perm("audit.alerts", "resolve"), handlers.ResolveAlert(alerts)},
		// The error log: admins (audit.alerts:read, which org:admin holds and org:member
		// does not) see their organization's rows, superadmins everyone's.
		{get, "/errors", Perm("audit.alerts", "read"), handlers.ListErrors(d.ErrorLog, d.Now)},
		{get, "/errors/:key", Perm("audit.alerts", "read"), handlers.ShowError(d.ErrorLog, d.Now)},
		// Running a report reads the organization's events (as the API's read scope does);
		// templates and schedules are created, changed and deleted under their own actions.
		{get, "/reports", Perm("audit.reports", "read"), handlers.ReportsPage(rep)},
		{post, "/reports/run", Perm("audit.reports", "read"), handlers.RunReport(rep)},
		{post, "/reports/templates", Perm("audit.reports", "create"), handlers.CreateReportTemplate(rep)},
		{post, "/reports/templates/:id/run", Perm("audit.reports", "read"), handlers.RunTemplate(rep)},
		{get, "/reports/templates/:id", Perm("audit.reports", "update"), handlers.EditReportTemplate(rep)},
		{post, "/reports/templates/:id", Perm("audit.reports", "update"), handlers.UpdateReportTemplate(rep)},
		{post, "/reports/templates/:id/delete", Perm("audit.reports", "delete"), handlers.DeleteReportTemplate(rep)},
		{post, "/reports/schedules", Perm("audit.reports", "create"), handlers.CreateReportSchedule(rep)},
		{get, "/reports/schedules/:id", Perm("audit.reports", "update"), handlers.EditReportSchedule(rep)},
		{post, "/reports/schedules/:id", Perm("audit.reports", "update"), handlers.UpdateReportSchedule(rep)},
		{post, "/reports/schedules/:id/toggle", Perm("audit.reports", "update"), handlers.ToggleReportSchedule(rep)},
		{post, "/reports/schedules/:id/delete", Perm("audit.reports", "delete"), handlers.DeleteReportSchedule(rep)},
		{get, "/reports/executions/:id", Perm("audit.reports", "read"), handlers.ShowReportExecution(rep)},
		{get, "/reports/executions/:id/files/:format", Perm("audit.reports", "read"), handlers.DownloadReportFile(rep)},
		{get, "/retention", Perm("audit.retention", "read"), handlers.RetentionPage(retention)},
		{post, "/retention/floors", SuperadminOnly, handlers.SetRetentionFloor(retention)},
		{get, "/retention/policies/new", Perm("audit.retention", "create"), handlers.NewRetentionPolicy(retention)},
		{post, "/retention/policies", Perm("audit.retention", "create"), handlers.CreateRetentionPolicy(retention)},
		{get, "/retention/policies/:id", Perm("audit.retention", "update"), handlers.EditRetentionPolicy(retention)},
		{post, "/retention/policies/:id", Perm("audit.retention", "update"), handlers.UpdateRetentionPolicy(retention)},
		{post, "/retention/policies/:id/delete", Perm("audit.retention", "delete"), handlers.DeleteRetentionPolicy(retention)},
		{get, "/retention/holds", Perm("audit.retention", "read"), handlers.LegalHoldsPage(retention)},
		{post, "/retention/holds", Perm("audit.retention", "update"), handlers.PlaceLegalHold(retention)},
		{post, "/retention/holds/:id/release", Perm("audit.retention", "update"), handlers.ReleaseLegalHold(retention)},
		{get, "/retention/archives", Perm("audit.retention", "read"), handlers.ListArchives(d.Archives)},
		{get, "/retention/archives/:policy/:month/:part", Perm("audit.retention", "read"), handlers.ShowArchive(d.Archives)},
		{get, "/retention/archives/:policy/:month/:part/download.jsonl.zst", Perm("audit.retention", "read"),
			handlers.DownloadArchive(d.Archives, "jsonl.zst")},
		{get, "/retention/archives/:policy/:month/:part/download.json", Perm("audit.retention", "read"),
			handlers.DownloadArchive(d.Archives, "json")},
		{get, "/retention/partitions", SuperadminOnly, handlers.PartitionsPage(partitions)},
		{post, "/retention/partitions/ensure", SuperadminOnly, handlers.EnsurePartitions(partitions)},
		{post, "/retention/partitions/drop-expired", SuperadminOnly, handlers.DropExpiredPartitions(partitions)},
		// The performance page: superadmins see the database as a whole, an organization's
		// viewers (audit.metrics read) its own figures only; maintenance is a superadmin's.
		{get, "/performance", Perm("audit.metrics", "read"), handlers.PerformancePage(perf)},
		{get, "/performance/explain/:name", Perm("audit.metrics", "read"), handlers.PerformanceExplain(perf)},
		{post, "/performance/vacuum", SuperadminOnly, handlers.VacuumTable(perf)},
		// GDPR requests: reading, filing and working them are audit.gdpr read/create/update;
		// each operation needs its own action (export, delete for erasure, pseudonymize) and
		// looking a pseudonym up needs reidentify, which only owners hold by default.
		{get, "/gdpr", Perm("audit.gdpr", "read"), handlers.GDPRPage(g)},
		{post, "/gdpr/requests", Perm("audit.gdpr", "create"), handlers.CreateGDPRRequest(g)},
		{get, "/gdpr/lookup", Perm("audit.gdpr", "reidentify"), handlers.GDPRLookupPage()},
		{post, "/gdpr/lookup", Perm("audit.gdpr", "reidentify"), handlers.GDPRLookup(g)},
		{get, "/gdpr/requests/:id", Perm("audit.gdpr", "read"), handlers.ShowGDPRRequest(g)},
		{post, "/gdpr/requests/:id/start", Perm("audit.gdpr", "update"), handlers.StartGDPRRequest(g)},
		{post, "/gdpr/requests/:id/assign", Perm("audit.gdpr", "update"), handlers.AssignGDPRRequest(g)},
		{post, "/gdpr/requests/:id/notes", Perm("audit.gdpr", "update"), handlers.SetGDPRNotes(g)},
		{post, "/gdpr/requests/:id/extend", Perm("audit.gdpr", "update"), handlers.ExtendGDPRRequest(g)},
		{post, "/gdpr/requests/:id/reject", Perm("audit.gdpr", "update"), handlers.RejectGDPRRequest(g)},
		{post, "/gdpr/requests/:id/complete", Perm("audit.gdpr", "update"), handlers.CompleteGDPRRequest(g)},
		{post, "/gdpr/requests/:id/lift", Perm("audit.gdpr", "update"), handlers.LiftGDPRRestriction(g)},
		{post, "/gdpr/requests/:id/rectify", Perm("audit.gdpr", "update"), handlers.RectifyGDPRRequest(g)},
		{post, "/gdpr/requests/:id/export", Perm("audit.gdpr", "export"), handlers.ExportGDPRRequest(g)},
		{get, "/gdpr/requests/:id/exports/:format", Perm("audit.gdpr", "export"), handlers.DownloadGDPRExport(g)},
		{post, "/gdpr/requests/:id/erasure/request", Perm("audit.gdpr", "delete"), handlers.RequestGDPRErasure(g)},
		{post, "/gdpr/requests/:id/erasure/approve", Perm("audit.gdpr", "delete"), handlers.ApproveGDPRErasure(g)},
		{post, "/gdpr/requests/:id/pseudonymize", Perm("audit.gdpr", "pseudonymize"), handlers.PseudonymizeGDPRRequest(g)},
		{get, "/settings", Perm("organization.settings", "read"), handlers.Settings()},
		{get, "/settings/notifications", Perm("audit.alerts", "update"), handlers.ListChannels(notify)},
		{post, "/settings/notifications", Perm("audit.alerts", "update"), handlers.CreateChannel(notify)},
		{post, "/settings/notifications/:id/test", Perm("audit.alerts", "update"), handlers.TestChannel(notify)},
		{post, "/settings/notifications/:id/enabled", Perm("audit.alerts", "update"), handlers.SetChannelEnabled(notify)},
		{get, "/settings/apikeys", Perm("audit.apikeys", "read"), handlers.ListAPIKeys(d.APIKeys)},
		{post, "/settings/apikeys", Perm("audit.apikeys", "create"), handlers.CreateAPIKey(d.APIKeys)},
		{post, "/settings/apikeys/:id/revoke", Perm("audit.apikeys", "delete"), handlers.RevokeAPIKey(d.APIKeys)},
		{get, "/settings/presets", Perm("audit.presets", "read"), handlers.ListPresets(d.Presets)},
		{get, "/settings/presets/new", Perm("audit.presets", "create"), handlers.NewPreset()},
		{post, "/settings/presets", Perm("audit.presets", "create"), handlers.CreatePreset(d.Presets)},
		{get, "/settings/presets/:id", Perm("audit.presets", "update"), handlers.EditPreset(d.Presets)},
		{post, "/settings/presets/:id", Perm("audit.presets", "update"), handlers.UpdatePreset(d.Presets)},
		{get, "/settings/alert-rules", Perm("audit.alerts", "update"), handlers.AlertRulesPage(d.AlertRules)},
		{post, "/settings/alert-rules/time-zone", Perm("audit.alerts", "update"), handlers.SetOrgTimeZone(d.AlertRules)},
		{post, "/settings/alert-rules/retention", Perm("audit.alerts", "update"), handlers.SetAlertRetention(d.AlertRules)},
		{post, "/settings/alert-rules/:rule", Perm("audit.alerts", "update"), handlers.UpdateAlertRule(d.AlertRules)},
		// Dead letters are events the database refused: reading them is reading events,
		// replaying them repairs the event stream (an administrator's update).
		{get, "/settings/dead-letters", Perm("audit.events", "read"), handlers.ListDeadLetters(d.DeadLetters)},
		{post, "/settings/dead-letters/:id/replay", Perm("audit.events", "update"), handlers.ReplayDeadLetter(d.Replayer)},
	}
}

// navNeeds maps each page path to the need of its GET route, so the navigation shows only
// the entries the viewer may follow.
func navNeeds(table []route) map[string]Need {
	out := map[string]Need{}
	for _, r := range table {
		if r.method == fiber.MethodGet {
			out[r.path] = r.need
		}
	}
	return out
}

// readiness is what /readyz checks: the database answers and holds this build's newest
// migration; Redis answers (if not, the application is degraded but ready).
func readiness(d *Services) handlers.Readiness {
	r := handlers.Readiness{Ping: models.Pinger(d.DB), Redis: d.Health.Redis}
	if d.SchemaVersion != "" {
		r.Schema = models.SchemaHas(d.DB, d.SchemaVersion)
	}
	return r
}
