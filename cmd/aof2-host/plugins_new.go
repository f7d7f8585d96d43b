package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/aof2/aof2/internal/buildinfo"
)

// pluginSkeleton is the module `plugins new` writes: a Backend whose every
// place to fill in answers an error naming it, the plugin's main, a
// conformance test and a Makefile. The files are templates (.tmpl) so
// that this module neither builds nor vets them, and so that go.mod does
// not turn the directory into a module of its own.
//
//go:embed all:pluginskeleton
var pluginSkeleton embed.FS

// skeletonGoVersion is the go directive of a new plugin module: this
// module's (TestPluginsNewGoVersion keeps them equal).
const skeletonGoVersion = "1.26.0"

var newPluginName = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// skeletonData fills the templates.
type skeletonData struct {
	Name      string // the plugin name: tier2.plugin, aof2-plugin-<Name>
	Package   string // the backend's Go package name
	Module    string
	GoVersion string
	Require   string // the github.com/aof2/aof2 version, "" to let go mod tidy pick
	Replace   string // a local aof2 checkout, "" for none
}

var pluginsNewCommand = command{name: "plugins new", args: "NAME",
	summary: "write a skeleton tier-2 backend module (Backend, main, conformance test, Makefile) to fill in",
	long: `Writes a Go module for the backend NAME (binary aof2-plugin-NAME) into -dir:
backend.go with every place to fill in marked TODO(aof2), answering an error that
says so until it is; cmd/aof2-plugin-NAME/main.go (pluginapi.Main); backend_test.go
running the conformance suite in-process and against the built binary; a Makefile
and a README. It compiles as written and fails the suite at each TODO(aof2).
-aof2 builds it against a local aof2 checkout (a replace directive); without it
'go mod tidy' fetches github.com/aof2/aof2. See docs/plugin-authors.md.`,
	example: "aof2-host plugins new mystore -module example.com/aof2-plugin-mystore\naof2-host plugins new mystore -dir ./mystore -aof2 ~/src/aof2",
	run:     runPluginsNew}

func runPluginsNew(_ context.Context, e *cmdEnv) error {
	module := e.flags.String("module", "", "the new module's path (default example.com/aof2-plugin-NAME)")
	dir := e.flags.String("dir", "", "where to write it; must not exist or be empty (default ./aof2-plugin-NAME)")
	aof2 := e.flags.String("aof2", "", "build against the aof2 checkout in this directory (a replace directive) instead of a published version")
	rest, err := e.parse(1, -1)
	if err != nil {
		return err
	}
	// Flags may follow NAME too.
	if err := e.flags.Parse(rest[1:]); err != nil {
		return err
	}
	if extra := e.flags.Args(); len(extra) > 0 {
		return usagef("unexpected argument %q", extra[0])
	}
	name := rest[0]
	if !newPluginName.MatchString(name) {
		return usagef("plugin name %q: lower-case letters, digits, - and _, starting with a letter (the binary is aof2-plugin-NAME)", name)
	}
	d := skeletonData{Name: name, Package: strings.NewReplacer("-", "", "_", "").Replace(name),
		Module: *module, GoVersion: skeletonGoVersion}
	if d.Module == "" {
		d.Module = "example.com/aof2-plugin-" + name
	}
	if *aof2 != "" {
		if d.Replace, err = aof2Checkout(*aof2); err != nil {
			return err
		}
		d.Require = "v0.0.0-00010101000000-000000000000"
	} else if v := buildinfo.Read().Version; strings.HasPrefix(v, "v") {
		d.Require = v
	}
	out := *dir
	if out == "" {
		out = "aof2-plugin-" + name
	}
	if err := emptyDir(out); err != nil {
		return err
	}
	files, err := writeSkeleton(out, d)
	if err != nil {
		return err
	}
	if d.Replace != "" {
		// The checkout's go.sum covers every module the skeleton needs, so
		// go mod tidy can work from the module cache; tidy prunes the rest.
		sum, err := os.ReadFile(filepath.Join(d.Replace, "go.sum"))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, "go.sum"), sum, 0o644); err != nil {
			return err
		}
		files = append(files, "go.sum")
	}
	for _, f := range files {
		fmt.Fprintln(e.stdout, filepath.Join(out, f))
	}
	fmt.Fprintf(e.stdout, "\nNext: cd %s && make tidy && make test (it fails at every TODO(aof2) until you fill them in;\ngrep -n 'TODO(aof2)' *.go lists them). docs/plugin-authors.md has the whole path.\n", out)
	return nil
}

// aof2Checkout returns dir as an absolute path after checking that it
// holds the github.com/aof2/aof2 module.
func aof2Checkout(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	mod, err := os.ReadFile(filepath.Join(abs, "go.mod"))
	if err != nil || !regexp.MustCompile(`(?m)^module github\.com/aof2/aof2\s*$`).Match(mod) {
		return "", usagef("-aof2 %s: not a checkout of github.com/aof2/aof2 (no go.mod naming it)", dir)
	}
	return abs, nil
}

// emptyDir makes sure dir is absent or an empty directory.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return usagef("-dir %s: %v", dir, err)
	case len(entries) > 0:
		return usagef("-dir %s exists and is not empty: refusing to overwrite it", dir)
	}
	return nil
}

// writeSkeleton renders every template into dir and returns the files
// written, relative to dir.
func writeSkeleton(dir string, d skeletonData) ([]string, error) {
	var written []string
	err := fs.WalkDir(pluginSkeleton, "pluginskeleton", func(p string, ent fs.DirEntry, err error) error {
		if err != nil || ent.IsDir() {
			return err
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(p, "pluginskeleton/"), ".tmpl")
		if path.Dir(rel) == "cmd" {
			rel = path.Join("cmd", "aof2-plugin-"+d.Name, path.Base(rel))
		}
		src, err := pluginSkeleton.ReadFile(p)
		if err != nil {
			return err
		}
		tmpl, err := template.New(rel).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return fmt.Errorf("skeleton template %s: %w", p, err)
		}
		var b strings.Builder
		if err := tmpl.Execute(&b, d); err != nil {
			return fmt.Errorf("skeleton template %s: %w", p, err)
		}
		target := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(target, []byte(b.String()), 0o644); err != nil {
			return err
		}
		written = append(written, rel)
		return nil
	})
	return written, err
}
