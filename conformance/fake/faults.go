package fake

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Mode is one kind of misbehaviour the fake can inject.
type Mode string

const (
	// Throttle fails the call with ErrThrottled carrying RetryAfter.
	Throttle Mode = "throttle"
	// ServerError fails the call as a backend 5xx (ErrUnavailable).
	ServerError Mode = "server_error"
	// Timeout blocks until the caller's context ends.
	Timeout Mode = "timeout"
	// SlowFirstByte delays the first byte of a Get (or the start of a
	// Put) by Delay.
	SlowFirstByte Mode = "slow_first_byte"
	// Truncate ends a Get's bytes early while still claiming the full range.
	Truncate Mode = "truncate"
	// WrongBytes flips a bit in the bytes a Get or GetFile returns.
	WrongBytes Mode = "wrong_bytes"
	// WrongChecksum reports a CRC-64/NVME that is not the object's.
	WrongChecksum Mode = "wrong_checksum"
	// DropPut acknowledges a Put but stores nothing.
	DropPut Mode = "drop_put"
	// Crash ends the plugin process mid-stream (see Options.CrashExit);
	// in-process it fails the call as a dropped connection.
	Crash Mode = "crash"
)

// Op is an operation a fault applies to.
type Op string

const (
	OpPut     Op = "put"
	OpPutFile Op = "put_file"
	OpGet     Op = "get"
	OpGetFile Op = "get_file"
	OpHead    Op = "head"
	OpList    Op = "list"
	OpDelete  Op = "delete"
	OpProbe   Op = "probe"
)

// Fault is one injection rule. The zero Rate means "always"; Count > 0 arms
// the rule for that many injections only.
type Fault struct {
	Mode Mode `json:"mode"`
	// Ops limits the rule to these operations (empty: every operation the
	// mode makes sense for).
	Ops []Op `json:"ops,omitempty"`
	// KeyPrefix limits the rule to keys with this prefix.
	KeyPrefix string `json:"key_prefix,omitempty"`
	// Rate is the probability (0 < Rate <= 1) that a matching call is hit.
	Rate float64 `json:"rate,omitempty"`
	// Count, when > 0, disarms the rule after that many injections.
	Count int `json:"count,omitempty"`
	// RetryAfter is the wait a Throttle fault asks for.
	RetryAfter time.Duration `json:"retry_after,omitempty"`
	// Delay is the SlowFirstByte delay.
	Delay time.Duration `json:"delay,omitempty"`
	// AfterBytes is where mid-stream faults (Crash, Truncate) strike.
	AfterBytes uint64 `json:"after_bytes,omitempty"`
}

var modeOps = map[Mode][]Op{
	Throttle:      {OpPut, OpPutFile, OpGet, OpGetFile, OpHead, OpList, OpDelete, OpProbe},
	ServerError:   {OpPut, OpPutFile, OpGet, OpGetFile, OpHead, OpList, OpDelete, OpProbe},
	Timeout:       {OpPut, OpPutFile, OpGet, OpGetFile, OpHead, OpList, OpDelete, OpProbe},
	SlowFirstByte: {OpPut, OpGet},
	Truncate:      {OpGet},
	WrongBytes:    {OpGet, OpGetFile},
	WrongChecksum: {OpPut, OpPutFile, OpGet, OpGetFile, OpHead},
	DropPut:       {OpPut, OpPutFile},
	Crash:         {OpPut, OpGet},
}

// Validate checks that a rule names a known mode and sensible operations.
func (f Fault) Validate() error {
	ops, ok := modeOps[f.Mode]
	if !ok {
		return fmt.Errorf("fake: unknown fault mode %q", f.Mode)
	}
	for _, op := range f.Ops {
		if !containsOp(ops, op) {
			return fmt.Errorf("fake: fault %q does not apply to %q", f.Mode, op)
		}
	}
	if f.Rate < 0 || f.Rate > 1 {
		return fmt.Errorf("fake: fault rate %v outside [0, 1]", f.Rate)
	}
	return nil
}

func containsOp(ops []Op, op Op) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

// faultSet holds the armed rules, counts injections, and (binary mode)
// reloads the rules from a control file when it changes.
type faultSet struct {
	mu       sync.Mutex
	rules    []Fault
	counts   map[Mode]int
	rng      *rand.Rand
	file     string
	fileStat string
}

func newFaultSet(seed uint64) *faultSet {
	return &faultSet{counts: map[Mode]int{}, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (s *faultSet) set(rules []Fault) error {
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append([]Fault(nil), rules...)
	return nil
}

// pick returns the fault to inject into op on key, if any.
func (s *faultSet) pick(op Op, key string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloadLocked()
	for i := range s.rules {
		r := &s.rules[i]
		ops := r.Ops
		if len(ops) == 0 {
			ops = modeOps[r.Mode]
		}
		if !containsOp(ops, op) || !strings.HasPrefix(key, r.KeyPrefix) {
			continue
		}
		if r.Rate > 0 && r.Rate < 1 && s.rng.Float64() >= r.Rate {
			continue
		}
		hit := *r
		if r.Count > 0 {
			r.Count--
			if r.Count == 0 {
				s.rules = append(s.rules[:i:i], s.rules[i+1:]...)
			}
		}
		s.counts[hit.Mode]++
		return hit, true
	}
	return Fault{}, false
}

// reloadLocked re-reads the control file when its size or mtime changed.
// A file that cannot be parsed disarms every rule (and says so on stderr),
// so a half-written file never leaves stale faults armed.
func (s *faultSet) reloadLocked() {
	if s.file == "" {
		return
	}
	fi, err := os.Stat(s.file)
	stamp := "missing"
	if err == nil {
		stamp = fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			stamp += fmt.Sprintf("/%d", st.Ino) // a rename within one mtime tick
		}
	}
	if stamp == s.fileStat {
		return
	}
	s.fileStat = stamp
	s.rules = nil
	if err != nil {
		return
	}
	data, err := os.ReadFile(s.file)
	if err != nil || len(strings.TrimSpace(string(data))) == 0 {
		return
	}
	var rules []Fault
	if err := json.Unmarshal(data, &rules); err != nil {
		fmt.Fprintf(os.Stderr, "fake: fault file %s: %v (all faults off)\n", s.file, err)
		return
	}
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			fmt.Fprintf(os.Stderr, "fake: fault file %s: %v (all faults off)\n", s.file, err)
			return
		}
	}
	s.rules = rules
}

func (s *faultSet) injected() map[Mode]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[Mode]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// WriteFaultFile atomically replaces a fault control file read by a fake
// plugin process (config key fault_file); nil rules turn faults off.
func WriteFaultFile(path string, rules []Fault) error {
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			return err
		}
	}
	data, err := json.Marshal(rules)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
