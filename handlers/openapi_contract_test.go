package handlers_test

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gofiber/fiber/v2"

	"auditdb/handlers"
	"auditdb/models"
	"auditdb/models/merkle"
)

// The tests in this file hold the OpenAPI document to what client generators need to
// produce a usable client without flags. They read the document only.

// loadOpenAPI loads the served document and fails unless it is valid OpenAPI.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(handlers.OpenAPIDocument())
	if err != nil {
		t.Fatalf("the document does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}
	return doc
}

// operation is one documented operation and where it is.
type operation struct {
	route string // "POST /events"
	op    *openapi3.Operation
}

// operations lists the document's operations in a stable order.
func operations(doc *openapi3.T) []operation {
	var ops []operation
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			ops = append(ops, operation{method + " " + path, op})
		}
	}
	slices.SortFunc(ops, func(a, b operation) int { return strings.Compare(a.route, b.route) })
	return ops
}

// visited is a schema visited under a property name.
type visited struct {
	schema *openapi3.Schema
	name   string
}

// visitSchema calls fn for s and every schema inside it (properties, items, additional
// properties, compositions), naming each by where it is and, for a property, its name.
// A schema is visited once per property name, so shared schemas and cycles end.
func visitSchema(s *openapi3.SchemaRef, where, name string, seen map[visited]bool, fn func(where, name string, s *openapi3.Schema)) {
	if s == nil || s.Value == nil {
		return
	}
	key := visited{s.Value, name}
	if seen[key] {
		return
	}
	seen[key] = true
	fn(where, name, s.Value)
	v := s.Value
	for prop, ps := range v.Properties {
		visitSchema(ps, where+".properties."+prop, prop, seen, fn)
	}
	visitSchema(v.Items, where+".items", name+"[]", seen, fn)
	visitSchema(v.AdditionalProperties.Schema, where+".additionalProperties", "", seen, fn)
	visitSchema(v.Not, where+".not", "", seen, fn)
	for _, group := range []openapi3.SchemaRefs{v.AllOf, v.AnyOf, v.OneOf} {
		for i, c := range group {
			visitSchema(c, where+"["+strconv.Itoa(i)+"]", name, seen, fn)
		}
	}
}

// visitDocument calls fn for every schema of the document: components, parameters,
// request bodies, responses and headers.
func visitDocument(doc *openapi3.T, fn func(where, name string, s *openapi3.Schema)) {
	seen := map[visited]bool{}
	for name, s := range doc.Components.Schemas {
		visitSchema(s, "components.schemas."+name, name, seen, fn)
	}
	for name, h := range doc.Components.Headers {
		visitSchema(h.Value.Schema, "components.headers."+name, name, seen, fn)
	}
	for name, p := range doc.Components.Parameters {
		visitSchema(p.Value.Schema, "components.parameters."+name, p.Value.Name, seen, fn)
	}
	for _, o := range operations(doc) {
		for _, p := range o.op.Parameters {
			visitSchema(p.Value.Schema, o.route+" parameter "+p.Value.Name, p.Value.Name, seen, fn)
		}
		if o.op.RequestBody != nil {
			for mt, media := range o.op.RequestBody.Value.Content {
				visitSchema(media.Schema, o.route+" request "+mt, "", seen, fn)
			}
		}
		for status, r := range o.op.Responses.Map() {
			for mt, media := range r.Value.Content {
				visitSchema(media.Schema, o.route+" "+status+" "+mt, "", seen, fn)
			}
			for name, h := range r.Value.Headers {
				visitSchema(h.Value.Schema, o.route+" "+status+" header "+name, name, seen, fn)
			}
		}
	}
}

func TestOpenAPIDocumentValidates(t *testing.T) {
	doc := loadOpenAPI(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q, want 3.0.3 (what most generators read)", doc.OpenAPI)
	}
	if len(operations(doc)) == 0 {
		t.Fatal("no operations")
	}
}

func TestOpenAPIInfoHasLicense(t *testing.T) {
	doc := loadOpenAPI(t)
	if doc.Info.License == nil || doc.Info.License.Name == "" {
		t.Fatal("info.license is missing: generators copy it into the client's package metadata")
	}
	if doc.Info.License.Name != "Proprietary" || doc.Info.License.URL != "" {
		t.Errorf("info.license = %+v, want Proprietary without a URL (the project has no license file)", *doc.Info.License)
	}
}

func TestOpenAPIOperationsHaveIDsAndDeclaredTags(t *testing.T) {
	doc := loadOpenAPI(t)
	declared := map[string]bool{}
	for _, tag := range doc.Tags {
		if strings.TrimSpace(tag.Description) == "" {
			t.Errorf("tag %q has no description", tag.Name)
		}
		if declared[tag.Name] {
			t.Errorf("tag %q is declared twice", tag.Name)
		}
		declared[tag.Name] = true
	}
	ids, used := map[string]string{}, map[string]bool{}
	idShape := regexp.MustCompile(`^[a-z][A-Za-z0-9]*$`)
	for _, o := range operations(doc) {
		switch id := o.op.OperationID; {
		case id == "":
			t.Errorf("%s has no operationId", o.route)
		case !idShape.MatchString(id):
			t.Errorf("%s: operationId %q is not lowerCamelCase", o.route, id)
		case ids[id] != "":
			t.Errorf("%s: operationId %q is also %s", o.route, id, ids[id])
		default:
			ids[id] = o.route
		}
		if len(o.op.Tags) == 0 {
			t.Errorf("%s has no tag", o.route)
		}
		for _, tag := range o.op.Tags {
			used[tag] = true
			if !declared[tag] {
				t.Errorf("%s: tag %q is not declared at the top level", o.route, tag)
			}
		}
	}
	for tag := range declared {
		if !used[tag] {
			t.Errorf("tag %q is declared but no operation has it", tag)
		}
	}
}

// hexNamed matches the names of members that hold hashes, digests, signatures or salts.
var hexNamed = regexp.MustCompile(`(?i)(hash|digest|signature|salt)$`)

func TestOpenAPIHashesHavePatterns(t *testing.T) {
	doc := loadOpenAPI(t)
	checked := 0
	visitDocument(doc, func(where, name string, s *openapi3.Schema) {
		if !s.Type.Is(openapi3.TypeString) {
			return
		}
		if !hexNamed.MatchString(strings.TrimSuffix(name, "[]")) && s.Format != "byte" {
			return
		}
		checked++
		if s.Pattern == "" {
			t.Errorf("%s (%s) has no pattern", where, name)
			return
		}
		if !strings.HasPrefix(s.Pattern, "^") || !strings.HasSuffix(s.Pattern, "$") {
			t.Errorf("%s: pattern %q is not anchored with ^ and $", where, s.Pattern)
		}
		re, err := regexp.Compile(s.Pattern)
		if err != nil {
			t.Errorf("%s: pattern %q does not compile: %v", where, s.Pattern, err)
			return
		}
		if re.MatchString("not a hash") || re.MatchString(strings.Repeat("0", 65)) {
			t.Errorf("%s: pattern %q accepts what is not a hash", where, s.Pattern)
		}
	})
	if checked < 10 {
		t.Errorf("only %d hash members found; the walk misses some", checked)
	}
}

func TestOpenAPIDetailsIsAnOpenObject(t *testing.T) {
	doc := loadOpenAPI(t)
	found := 0
	visitDocument(doc, func(where, name string, s *openapi3.Schema) {
		if name != "details" {
			return
		}
		found++
		if !s.Type.Is(openapi3.TypeObject) {
			t.Errorf("%s is not an object", where)
		}
		if ap := s.AdditionalProperties; ap.Has == nil || !*ap.Has {
			t.Errorf("%s does not say additionalProperties: true, so some generators make it an empty type", where)
		}
	})
	if found < 2 {
		t.Errorf("details found %d times, want it in EventInput and Event", found)
	}
}

// TestOpenAPIServerDefaultsAreOptional checks that request members the server fills in
// are optional for clients: not required, and without a `default` keyword, which some
// generators (openapi-typescript) take to mean the member is always present.
func TestOpenAPIServerDefaultsAreOptional(t *testing.T) {
	doc := loadOpenAPI(t)
	defaulted := 0
	seen := map[visited]bool{}
	for _, o := range operations(doc) {
		if o.op.RequestBody == nil {
			continue
		}
		for mt, media := range o.op.RequestBody.Value.Content {
			visitSchema(media.Schema, o.route+" request "+mt, "", seen, func(where, _ string, s *openapi3.Schema) {
				if s.Default != nil {
					t.Errorf("%s has default %v: say the default in the description instead", where, s.Default)
				}
				for name, p := range s.Properties {
					if p.Value == nil || !strings.Contains(strings.ToLower(p.Value.Description), "default") && p.Value.Default == nil {
						continue
					}
					defaulted++
					if slices.Contains(s.Required, name) {
						t.Errorf("%s.%s has a server default but is required", where, name)
					}
				}
			})
		}
	}
	if defaulted < 4 {
		t.Errorf("%d request members describe a server default, want at least timestamp, dataClassification, retentionPolicy and eventVersion", defaulted)
	}
}

func TestOpenAPIDeclaresRetryAndReplayHeaders(t *testing.T) {
	doc := loadOpenAPI(t)
	declares := func(r *openapi3.Response, name string, required bool) bool {
		h := r.Headers[name]
		return h != nil && h.Value != nil && (!required || h.Value.Required) &&
			h.Value.Schema != nil && h.Value.Schema.Value != nil
	}
	for _, o := range operations(doc) {
		// Every request authenticates its API key against the database, so every
		// operation can answer 503 (with Retry-After) while the database is unreachable.
		if o.op.Responses.Status(http.StatusServiceUnavailable) == nil {
			t.Errorf("%s does not document 503", o.route)
		}
		for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
			r := o.op.Responses.Status(status)
			if r == nil {
				continue
			}
			if !declares(r.Value, fiber.HeaderRetryAfter, true) {
				t.Errorf("%s %d does not declare a required Retry-After header", o.route, status)
			} else if s := r.Value.Headers[fiber.HeaderRetryAfter].Value.Schema.Value; !s.Type.Is(openapi3.TypeInteger) {
				t.Errorf("%s %d: Retry-After is not an integer (seconds)", o.route, status)
			}
		}
		idempotent := slices.ContainsFunc(o.op.Parameters, func(p *openapi3.ParameterRef) bool {
			return p.Value.In == openapi3.ParameterInHeader && p.Value.Name == handlers.IdempotencyHeader
		})
		if !idempotent {
			continue
		}
		if o.op.Responses.Status(http.StatusTooManyRequests) == nil {
			t.Errorf("%s writes events but does not document 429 (the ingest queue is full)", o.route)
		}
		r := o.op.Responses.Status(http.StatusCreated)
		if r == nil || !declares(r.Value, "Idempotent-Replayed", false) {
			t.Errorf("%s takes %s but its 201 does not declare Idempotent-Replayed", o.route, handlers.IdempotencyHeader)
		}
	}

	// A proof asked for before a checkpoint covers the event is a 404 with Retry-After.
	if models.KindOf(merkle.ErrNotYetLogged) != models.KindNotFound || models.RetryAfterOf(merkle.ErrNotYetLogged) <= 0 {
		t.Fatal("merkle.ErrNotYetLogged is no longer a 404 with Retry-After: update this test and the document")
	}
	proof := doc.Paths.Find("/events/{id}/proof")
	if proof == nil || proof.Get == nil {
		t.Fatal("GET /events/{id}/proof is not documented")
	}
	if r := proof.Get.Responses.Status(http.StatusNotFound); r == nil || !declares(r.Value, fiber.HeaderRetryAfter, false) {
		t.Error("GET /events/{id}/proof 404 does not declare Retry-After")
	}
}

// POST /reports documents its refusals: the 400s with the field each names, and the 429
// of the running-reports limit with Retry-After.
func TestOpenAPIReportRunRefusals(t *testing.T) {
	doc := loadOpenAPI(t)
	item := doc.Paths.Find("/reports")
	if item == nil || item.Post == nil {
		t.Fatal("POST /reports is not documented")
	}
	op := item.Post
	bad := op.Responses.Status(http.StatusBadRequest)
	if bad == nil || bad.Value == nil || bad.Value.Description == nil {
		t.Fatal("POST /reports does not document 400")
	}
	for _, want := range []string{"`body`", "UTF-8", "after the object", "unknown member", "`template_id`",
		"`from`", "2000-01-01", "a day in the future", "`to`", "5 years"} {
		if !strings.Contains(*bad.Value.Description, want) {
			t.Errorf("the 400 of POST /reports does not say %q", want)
		}
	}
	if s := bad.Value.Content.Get("application/json"); s == nil || s.Schema == nil || s.Schema.Value.Properties["error"] == nil {
		t.Error("the 400 of POST /reports is not the Error shape")
	}
	many := op.Responses.Status(http.StatusTooManyRequests)
	if many == nil || many.Value.Headers[fiber.HeaderRetryAfter] == nil {
		t.Fatal("POST /reports does not document 429 with Retry-After")
	}
	if !strings.Contains(op.Description, "At most 3 reports run at once") {
		t.Error("POST /reports does not say when it answers 429")
	}
	req := doc.Components.Schemas["ReportRequest"]
	if req == nil || req.Value.AdditionalProperties.Has == nil || *req.Value.AdditionalProperties.Has {
		t.Error("ReportRequest does not forbid other members")
	}
}
