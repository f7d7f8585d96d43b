// Command aof2-conformance certifies a backend plugin without Go test
// wiring: it launches the plugin binary exactly as the host does (or
// attaches to one started with -debug), runs the conformance suite, prints
// a human summary and writes a machine-readable JSON report.
//
// The JSON report is the certification an author can publish: it names
// the suite version and the contract version it checks, the SHA-256 of the
// plugin binary certified, each behaviour's outcome and duration, and the
// Put/Get throughput measured after the suite (--bench, on by default).
//
//	aof2-conformance --plugin ./aof2-plugin-s3 --config bucket=b --config region=r [--json report.json]
//	aof2-conformance --reattach '{"network":"unix","address":"/tmp/x/backend.sock"}' --config root=/tmp/t
//
// Exit status: 0 all behaviours passed, 1 usage, 2 some behaviour failed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/conformance"
	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
)

type kvFlag map[string]string

func (f kvFlag) String() string { return fmt.Sprint(map[string]string(f)) }

func (f kvFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	f[k] = v
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("aof2-conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := kvFlag{}
	env := kvFlag{}
	plugin := fs.String("plugin", "", "plugin binary to certify")
	reattach := fs.String("reattach", "", "JSON address of an already-running plugin (instead of --plugin)")
	fs.Var(cfg, "config", "backend setting key=value (repeatable)")
	fs.Var(env, "env", "environment variable KEY=VALUE passed to the plugin (repeatable)")
	jsonOut := fs.String("json", "", "write the JSON report to this file ('-' for stdout, after the summary)")
	staging := fs.String("staging-dir", "", "directory PutFile/GetFile files must live in")
	noTLS := fs.Bool("no-automtls", false, "disable go-plugin AutoMTLS")
	sha := fs.String("sha256", "", "pinned SHA-256 of the plugin binary")
	large := fs.Bool("large", false, "also round-trip a 1 GiB object")
	runRe := fs.String("run", "", "regular expression selecting behaviours")
	timeout := fs.Duration("timeout", 2*time.Minute, "time limit per behaviour")
	verbose := fs.Bool("v", false, "print every behaviour, not only failures")
	bench := fs.Bool("bench", true, "measure Put/Get throughput after the suite and report it")
	benchSize := fs.Int("bench-size", 4<<20, "bytes per object for --bench")
	benchObjects := fs.Int("bench-objects", 8, "objects written and read for --bench")
	benchConcurrency := fs.Int("bench-concurrency", 4, "streams at once for --bench (at most the backend's max_concurrent_streams)")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	if (*plugin == "") == (*reattach == "") || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "aof2-conformance: exactly one of --plugin or --reattach is required")
		fs.Usage()
		return 1
	}
	var h conformance.Harness
	level := hclog.Error // the suite provokes warnings on purpose
	if *verbose {
		level = hclog.Info
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "aof2-conformance", Level: level, Output: stderr})
	if *plugin != "" {
		var envList []string
		for k, v := range env {
			envList = append(envList, k+"="+v)
		}
		h = &conformance.Binary{Path: *plugin, Config: cfg, StagingDir: *staging, Launch: pluginhost.LaunchConfig{
			DisableAutoMTLS: *noTLS, SHA256: *sha, Env: envList, Logger: logger,
		}}
	} else {
		addr, err := pluginapi.ParseReattach(*reattach)
		if err != nil {
			fmt.Fprintln(stderr, "aof2-conformance:", err)
			return 1
		}
		h = &conformance.Reattach{Addr: addr, Config: cfg, StagingDir: *staging}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := conformance.Options{Large: *large, Run: *runRe, Timeout: *timeout}
	if *bench {
		opts.Bench = &conformance.BenchOptions{ObjectSize: *benchSize, Objects: *benchObjects, Concurrency: *benchConcurrency}
	}
	rep := conformance.Certify(ctx, h, opts)
	printSummary(stdout, rep, *verbose)
	if *jsonOut != "" {
		if err := writeJSON(*jsonOut, stdout, rep); err != nil {
			fmt.Fprintln(stderr, "aof2-conformance:", err)
			return 1
		}
	}
	if !rep.OK() {
		return 2
	}
	return 0
}

func printSummary(w io.Writer, rep *conformance.Report, verbose bool) {
	fmt.Fprintf(w, "conformance suite %s (contract %s)\n", rep.SuiteVersion, rep.SuiteContract)
	if rep.Plugin != nil {
		fmt.Fprintf(w, "plugin %s sha256:%s (%d bytes)\n", rep.Plugin.Path, rep.Plugin.SHA256, rep.Plugin.Size)
	}
	if rep.Backend != "" {
		fmt.Fprintf(w, "backend %q %s, contract %s, chunk size %d, %s harness\n", rep.Backend, rep.Version, rep.Contract, rep.ChunkSize, rep.Harness)
	}
	for _, c := range rep.Cases {
		if c.Status == "pass" && !verbose || c.Status == "skip" && !verbose {
			continue
		}
		fmt.Fprintf(w, "%-4s %-45s %8s\n", strings.ToUpper(c.Status), c.Name, c.Duration.Round(time.Millisecond))
		if c.Status == "fail" {
			for _, m := range c.Messages {
				fmt.Fprintf(w, "       %s\n", m)
			}
		}
	}
	if b := rep.Benchmarks; b != nil {
		if b.Error != "" {
			fmt.Fprintf(w, "throughput: not measured: %s\n", b.Error)
		} else {
			fmt.Fprintf(w, "throughput: put %.1f MiB/s, get %.1f MiB/s (%d objects of %d bytes, %d streams)\n", b.PutMiBps, b.GetMiBps, b.Objects, b.ObjectSize, b.Concurrency)
		}
	}
	verdict := "CERTIFIED"
	if !rep.OK() {
		verdict = "NOT CERTIFIED"
	}
	fmt.Fprintf(w, "%d passed, %d failed, %d skipped in %s: %s\n", rep.Passed, rep.Failed, rep.Skipped, rep.Duration.Round(time.Millisecond), verdict)
}

func writeJSON(path string, stdout io.Writer, rep *conformance.Report) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if path == "-" {
		_, err = stdout.Write(data)
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return errors.Join(fmt.Errorf("writing the report"), err)
	}
	return nil
}
