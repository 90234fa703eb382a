package main

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The dependency rule of the architecture: main → cli → {web, jobs, migrations};
// web → handlers → {views, models, policy}; jobs → models; policy → models; models'
// sub-packages may import models, models never imports a pipeline of its own; views, models
// and policy never import Fiber; migrations imports nothing of ours. The test lives here, at
// the module's root, because the rule spans the whole module and `go list ./...` run from
// this package's directory lists exactly that.

// layerOf places each package of ours in a layer by its import path: a row holds the
// package and those beneath it, the longest matching row wins, and the root row holds the
// root package only. A package no row matches fails the test, so a new directory gets a row.
var layerOf = []struct{ prefix, layer string }{
	{"auditdb", "main"},
	{"auditdb/cli", "cli"},
	{"auditdb/web", "web"},
	{"auditdb/handlers", "handlers"},
	{"auditdb/views", "views"},
	{"auditdb/jobs", "jobs"},
	{"auditdb/bench", "bench"},
	{"auditdb/policy", "policy"},
	{"auditdb/models", "models"},
	// The decoder of the ingest wire format imports nothing of ours; the stores validate
	// preset defaults with it, so it sits beneath models rather than above it.
	{"auditdb/models/eventjson", "codec"},
	{"auditdb/models/export", "codec"},
	// The Prometheus series: the writer, the jobs and the web layer all record into them.
	{"auditdb/models/metrics", "codec"},
	{"auditdb/models/ingest", "pipeline"},
	{"auditdb/models/merkle", "pipeline"},
	{"auditdb/models/bundle", "pipeline"},
	{"auditdb/models/session", "pipeline"},
	{"auditdb/models/demo", "pipeline"},
	{"auditdb/models/reports", "pipeline"},
	{"auditdb/models/querycache", "pipeline"},
	{"auditdb/models/pgtest", "testsupport"},
	{"auditdb/web/webtest", "testsupport"},
	{"auditdb/migrations", "migrations"},
	{"auditdb/static", "static"},
}

// mayImport lists, per layer, the layers its packages may import (besides their own layer,
// which Go keeps acyclic). Test-support packages are imported by tests only: no layer lists
// them, and `go list` without -test does not show test imports.
var mayImport = map[string][]string{
	"main":        {"cli", "models"}, // main() calls cli.Run and prints the error's message
	"cli":         {"web", "jobs", "migrations", "bench", "policy", "pipeline", "models", "codec"},
	"web":         {"handlers", "views", "policy", "pipeline", "models", "codec", "static"},
	"handlers":    {"views", "policy", "pipeline", "models", "codec"},
	"jobs":        {"pipeline", "models", "codec"}, // codec: the metrics the jobs record
	"bench":       {"policy", "pipeline", "models", "codec"},
	"policy":      {"models"},
	"views":       {},
	"pipeline":    {"models", "codec"}, // and each other, e.g. demo writes through ingest
	"models":      {"codec"},
	"codec":       {},
	"testsupport": {"main", "web", "handlers", "policy", "pipeline", "models", "codec", "migrations", "static"},
	"migrations":  {},
	"static":      {},
}

// exceptions are imports that break the rule today and are being removed (none now).
var exceptions = map[[2]string]string{}

// noFiber are the layers that must not depend on Fiber, directly or through another package.
var noFiber = []string{"views", "policy", "pipeline", "models", "codec", "migrations"}

type listedPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func layer(path string) string {
	best, name := -1, ""
	for _, r := range layerOf {
		under := strings.HasPrefix(path, r.prefix+"/") && r.prefix != "auditdb"
		if (path == r.prefix || under) && len(r.prefix) > best {
			best, name = len(r.prefix), r.layer
		}
	}
	return name
}

// violations returns every import among pkgs that breaks the rule, one line each.
func violations(pkgs []listedPackage) []string {
	var out []string
	for _, p := range pkgs {
		from := layer(p.ImportPath)
		if from == "" {
			out = append(out, p.ImportPath+": no layer; add a row to layerOf")
			continue
		}
		for _, imp := range p.Imports {
			if imp != "auditdb" && !strings.HasPrefix(imp, "auditdb/") {
				continue
			}
			to := layer(imp)
			if to == from || slices.Contains(mayImport[from], to) || exceptions[[2]string{p.ImportPath, imp}] != "" {
				continue
			}
			out = append(out, p.ImportPath+" ("+from+") imports "+imp+" ("+to+")")
		}
		if slices.Contains(noFiber, from) {
			for _, d := range p.Deps {
				if d == "github.com/gofiber/fiber/v2" || strings.HasPrefix(d, "github.com/gofiber/") {
					out = append(out, p.ImportPath+" ("+from+") depends on "+d)
					break
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func TestImportLayers(t *testing.T) {
	cmd := exec.Command("go", "list", "-json", "./...")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []listedPackage
	for dec := json.NewDecoder(stdout); ; {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; expected the whole module", len(pkgs))
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// TestImportLayersCatches: the check reports an import upwards, a store importing a
// pipeline, a view importing models, Fiber below handlers, a test-support package outside
// tests, the root package reaching past cli and a package no row places; a pipeline's own
// imports pass.
func TestImportLayersCatches(t *testing.T) {
	pkgs := []listedPackage{
		{ImportPath: "auditdb/jobs", Imports: []string{"auditdb/web"}},
		{ImportPath: "auditdb/models", Imports: []string{"auditdb/models/ingest"}},
		{ImportPath: "auditdb/views/pages/events", Imports: []string{"auditdb/models"}},
		{ImportPath: "auditdb/policy", Deps: []string{"github.com/gofiber/fiber/v2"}},
		{ImportPath: "auditdb/migrations", Imports: []string{"auditdb/models"}},
		{ImportPath: "auditdb/handlers", Imports: []string{"auditdb/models/pgtest"}},
		{ImportPath: "auditdb/models/ingest", Imports: []string{"auditdb/models", "auditdb/models/eventjson"}},
		{ImportPath: "auditdb", Imports: []string{"auditdb/cli", "auditdb/web"}},
		{ImportPath: "auditdb/newdir", Imports: []string{"auditdb/models"}},
	}
	got := violations(pkgs)
	want := []string{
		"auditdb (main) imports auditdb/web (web)",
		"auditdb/handlers (handlers) imports auditdb/models/pgtest (testsupport)",
		"auditdb/jobs (jobs) imports auditdb/web (web)",
		"auditdb/migrations (migrations) imports auditdb/models (models)",
		"auditdb/models (models) imports auditdb/models/ingest (pipeline)",
		"auditdb/newdir: no layer; add a row to layerOf",
		"auditdb/policy (policy) depends on github.com/gofiber/fiber/v2",
		"auditdb/views/pages/events (views) imports auditdb/models (models)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("violations =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
