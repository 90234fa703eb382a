# auditdb — common tasks. `make run` starts the console on its defaults; `make test` runs
# every test against the local PostgreSQL and Redis.

GO      ?= go
TEMPL   ?= templ
BIN     ?= ./auditdb
EVENTS  ?= 50000

.PHONY: run build test generate css assets lint bench-list bench-ingest fault tools

build:
	$(GO) build -o $(BIN) .

# Migrate, seed the demo organizations, users and events (once), then serve on :8080.
run: build
	$(BIN) seed --demo --events $(EVENTS)
	$(BIN) serve

# The whole test suite: stores and migrations on the real PostgreSQL, handlers through
# Fiber, and the browser test in headless Chromium.
test:
	$(GO) test ./... -count=1 -timeout 20m

tools:
	$(GO) install github.com/a-h/templ/cmd/templ@v0.3.1100

generate:
	$(TEMPL) generate -path views

node_modules: package.json package-lock.json
	npm ci
	@touch node_modules

# Run after `generate`: Tailwind scans views/**/*.templ and views/**/*_templ.go.
css: node_modules
	npx tailwindcss -i static/src/app.css -o static/css/app.css --minify

assets: css
	cp node_modules/htmx.org/dist/htmx.min.js static/js/htmx.min.js

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	@# The committed templ output must be what `make generate` writes.
	$(TEMPL) generate -path views >/dev/null 2>&1
	@git diff --exit-code --stat -- views || (echo "views: run make generate and commit the result"; exit 1)

# Events list latency at 1,000,000 events against the same SQL run bare.
bench-list: build
	$(BIN) bench events-list --events 1000000 --iterations 2000

# Ingest throughput and latency against a raw COPY of the same events, in the same run.
bench-ingest: build
	$(BIN) bench ingest

# Stops and starts PostgreSQL during sustained ingest (see scripts/fault-ingest.sh for
# pointing it at a throwaway cluster instead of "15 main").
fault:
	scripts/fault-ingest.sh
