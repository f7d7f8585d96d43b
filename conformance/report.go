package conformance

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// Report is the outcome of Certify: one Case per behaviour (and
// sub-behaviour), in run order, each with its duration. It is what an
// author publishes as a certification: which suite (SuiteVersion, checking
// contract SuiteContract) passed which plugin binary (Plugin's SHA-256),
// and how fast the backend moved bytes then (Benchmarks).
type Report struct {
	SuiteVersion  string `json:"suite_version"`
	SuiteContract string `json:"suite_contract"`
	Harness       string `json:"harness"`
	// Plugin is the certified executable (Binary harness, or Reattach to a
	// process whose executable can be read).
	Plugin  *PluginBinary `json:"plugin,omitempty"`
	Backend string        `json:"backend,omitempty"`
	Version string        `json:"version,omitempty"`
	// Contract is the contract version the backend advertised.
	Contract  string        `json:"contract,omitempty"`
	ChunkSize uint32        `json:"chunk_size,omitempty"`
	KeyPrefix string        `json:"key_prefix,omitempty"`
	Started   time.Time     `json:"started"`
	Duration  time.Duration `json:"duration_ns"`
	Passed    int           `json:"passed"`
	Failed    int           `json:"failed"`
	Skipped   int           `json:"skipped"`
	Cases     []Case        `json:"cases"`
	// Benchmarks is the measured throughput (Options.Bench).
	Benchmarks *Benchmarks `json:"benchmarks,omitempty"`
}

// Case is one behaviour's result.
type Case struct {
	Name     string        `json:"name"`
	Status   string        `json:"status"` // pass, fail or skip
	Duration time.Duration `json:"duration_ns"`
	// Rules lists the IDs of the contract rules the case broke.
	Rules    []string `json:"rules,omitempty"`
	Messages []string `json:"messages,omitempty"`
}

// OK reports whether nothing failed.
func (r *Report) OK() bool { return r.Failed == 0 }

// Certify runs the suite against h outside `go test` and reports every
// behaviour's outcome.
func Certify(ctx context.Context, h Harness, opts Options) *Report {
	rep := &Report{SuiteVersion: SuiteVersion, SuiteContract: SuiteContract(), Harness: h.Name(), Started: time.Now()}
	root := &reportT{name: "conformance", ctx: ctx, rep: rep}
	p, err := pluginOf(h)
	if err != nil {
		root.errs = append(root.errs, RuleProbe.msg("got %v, want a readable plugin binary", err))
	}
	rep.Plugin = p
	if len(root.errs) == 0 {
		root.runBody(func(t T) { RunT(t, h, opts) })
	}
	rep.Duration = time.Since(rep.Started)
	if len(root.errs) > 0 {
		// Failures outside any behaviour (the backend would not start).
		rep.Cases = append([]Case{{Name: "Start", Status: "fail", Messages: root.errs, Rules: rulesIn(root.errs)}}, rep.Cases...)
	}
	if opts.Bench != nil && len(root.errs) == 0 {
		timeout := opts.Timeout
		if timeout <= 0 {
			timeout = 2 * time.Minute
		}
		bctx, cancel := context.WithTimeout(ctx, timeout)
		b, err := RunBenchmarks(bctx, h, *opts.Bench)
		cancel()
		if b == nil {
			b = &Benchmarks{}
		}
		if err != nil {
			b.Error = err.Error()
		}
		rep.Benchmarks = b
	}
	for _, c := range rep.Cases {
		switch c.Status {
		case "pass":
			rep.Passed++
		case "fail":
			rep.Failed++
		default:
			rep.Skipped++
		}
	}
	return rep
}

// reportT implements T for Certify. Like testing.T, FailNow and Skipf end
// the calling goroutine (runtime.Goexit), so every test body runs on a
// goroutine of its own.
type reportT struct {
	name     string
	ctx      context.Context
	rep      *Report
	mu       sync.Mutex
	failed   bool
	skipped  bool
	messages []string
	errs     []string // the Errorf messages among messages
	cleanups []func()
	tempDirs []string
}

func (t *reportT) Helper()      {}
func (t *reportT) Name() string { return t.name }

func (t *reportT) Errorf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed = true
	msg := fmt.Sprintf(format, args...)
	t.messages = append(t.messages, msg)
	t.errs = append(t.errs, msg)
}

func (t *reportT) FailNow() {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	runtime.Goexit()
}

func (t *reportT) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *reportT) Logf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.messages = append(t.messages, fmt.Sprintf(format, args...))
}

func (t *reportT) Skipf(format string, args ...any) {
	t.mu.Lock()
	t.skipped = true
	t.messages = append(t.messages, "skipped: "+fmt.Sprintf(format, args...))
	t.mu.Unlock()
	runtime.Goexit()
}

func (t *reportT) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *reportT) Context() context.Context { return t.ctx }

func (t *reportT) TempDir() string {
	dir, err := os.MkdirTemp("", "aof2-conformance-*")
	if err != nil {
		t.Errorf("TempDir: %v", err)
		t.FailNow()
	}
	t.mu.Lock()
	t.tempDirs = append(t.tempDirs, dir)
	t.mu.Unlock()
	return dir
}

// runBody runs f on its own goroutine and then the cleanups, in reverse.
func (t *reportT) runBody(f func(T)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("panic: %v", p)
			}
		}()
		f(t)
	}()
	<-done
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	for _, d := range t.tempDirs {
		_ = os.RemoveAll(d)
	}
}

func (t *reportT) Run(name string, f func(T)) bool {
	full := t.name + "/" + name
	if t.name == "conformance" {
		full = name
	}
	sub := &reportT{name: full, ctx: t.ctx, rep: t.rep}
	idx := len(t.rep.Cases)
	t.rep.Cases = append(t.rep.Cases, Case{Name: full})
	start := time.Now()
	sub.runBody(f)
	c := &t.rep.Cases[idx]
	c.Duration = time.Since(start)
	c.Messages = sub.messages
	c.Rules = rulesIn(sub.messages)
	switch {
	case sub.failed:
		c.Status = "fail"
		t.mu.Lock()
		t.failed = true
		t.mu.Unlock()
	case sub.skipped:
		c.Status = "skip"
	default:
		c.Status = "pass"
	}
	return !sub.failed
}

// rulesIn extracts the rule IDs ("[ID] ...") from failure messages.
func rulesIn(msgs []string) []string {
	seen := map[string]bool{}
	for _, m := range msgs {
		if strings.HasPrefix(m, "[") {
			if end := strings.IndexByte(m, ']'); end > 1 {
				seen[m[1:end]] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
