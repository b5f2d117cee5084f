// The task runner, kept in a module of its own so that its dependencies
// stay out of popgate's module graph. `go tool task` in the repository runs
// the small wrapper in cmd/task, which runs the task named here.
//
// v3.37.2 has every feature Taskfile.yml uses and builds from 23 modules.
// Later releases add syntax-highlighted snippets to error messages (v3.38,
// chroma and regexp2: 4 more CPU seconds on a first run), then remote
// Taskfiles: go-git (v3.40) and go-getter with the AWS and Google Cloud
// SDKs (v3.47), 400 modules in all.
//
// Modules that popgate builds too (golang.org/x/sys, term, sync) are at
// popgate's versions, so that a first run compiles them once; a test in
// cmd/task keeps them so.
module github.com/popgate/popgate/tools

go 1.26.4

tool github.com/go-task/task/v3/cmd/task

require (
	github.com/Masterminds/semver/v3 v3.2.1 // indirect
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/dominikbraun/graph v0.23.0 // indirect
	github.com/fatih/color v1.16.0 // indirect
	github.com/go-task/slim-sprig/v3 v3.0.0 // indirect
	github.com/go-task/task/v3 v3.37.2 // indirect
	github.com/go-task/template v0.0.0-20240422130016-8f6b279b1e90 // indirect
	github.com/joho/godotenv v1.5.1 // indirect
	github.com/klauspost/cpuid/v2 v2.0.9 // indirect
	github.com/mattn/go-colorable v0.1.13 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/mattn/go-zglob v0.0.4 // indirect
	github.com/mitchellh/hashstructure/v2 v2.0.2 // indirect
	github.com/radovskyb/watcher v1.0.7 // indirect
	github.com/sajari/fuzzy v1.0.0 // indirect
	github.com/spf13/pflag v1.0.5 // indirect
	github.com/zeebo/xxh3 v1.0.2 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.48.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
	mvdan.cc/sh/v3 v3.8.0 // indirect
)
