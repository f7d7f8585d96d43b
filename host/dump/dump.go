// Package dump is the operator's view of a node's data: for every stream,
// which segments sit in which tier, and for the node, how full each tier is
// and what work is queued. The same document is built from a running host
// (online: live catalog, budgets, queues, hydration latency, tier-2
// counters) and from a data directory alone (offline: the manifests, read
// without writing), printed as a table or as JSON (`aof2-host dump`).
package dump

import (
	"time"

	"github.com/aof2/aof2/core/tier2"
)

// Schema is the version of the JSON document; it changes only when a field
// changes meaning or disappears.
const Schema = 1

// Source says where a Dump came from.
type Source string

const (
	// Online: a running host's live state.
	Online Source = "online"
	// Offline: a data directory's manifests, read while no host runs.
	Offline Source = "offline"
)

// Dump is the whole document.
type Dump struct {
	Schema  int       `json:"schema"`
	Taken   time.Time `json:"taken"`
	Source  Source    `json:"source"`
	DataDir string    `json:"data_dir"`
	Tiers   []Tier    `json:"tiers"`
	// Queues are jobs queued or running by kind (online only).
	Queues    map[string]int `json:"queues,omitempty"`
	Hydration *Hydration     `json:"hydration,omitempty"`
	Tier2     *Tier2Health   `json:"tier2_health,omitempty"`
	Streams   []Stream       `json:"streams"`
	// Problems lists what a reader of the dump must not miss: broken
	// streams, segments needing recovery, unreadable manifests.
	Problems []string `json:"problems,omitempty"`
}

// Tier summarises one tier.
type Tier struct {
	Name     string `json:"name"`
	Segments int    `json:"segments"`
	// Bytes: segment bytes in tier 0 (durable data), compressed bytes in
	// tiers 1 and 2.
	Bytes int64 `json:"bytes"`
	// MaxBytes is the tier's budget (0: unlimited or unknown).
	MaxBytes int64 `json:"max_bytes,omitempty"`
}

// Hydration is the recent hydration picture (online only).
type Hydration struct {
	InFlight int           `json:"in_flight"`
	P50      time.Duration `json:"p50_ns"`
	P90      time.Duration `json:"p90_ns"`
	P99      time.Duration `json:"p99_ns"`
}

// Tier2Health is the remote store's picture (online only): the circuit
// breaker and the counters per operation.
type Tier2Health struct {
	Breaker             string            `json:"breaker"`
	BreakerSince        time.Time         `json:"breaker_since"`
	ConsecutiveFailures int               `json:"consecutive_failures"`
	LastError           string            `json:"last_error,omitempty"`
	UploadedBytes       uint64            `json:"uploaded_bytes"`
	DownloadedBytes     uint64            `json:"downloaded_bytes"`
	Attempts            map[string]uint64 `json:"attempts,omitempty"`
	Retries             map[string]uint64 `json:"retries,omitempty"`
	Failures            map[string]uint64 `json:"failures,omitempty"`
	DataLoss            uint64            `json:"data_loss"`
	ChecksumFailures    uint64            `json:"checksum_failures"`
	Inflight            int64             `json:"inflight"`
	Waiting             int64             `json:"waiting"`
}

func tier2Health(st tier2.Stats) *Tier2Health {
	h := &Tier2Health{Breaker: st.Breaker.State.String(), BreakerSince: st.Breaker.Since, ConsecutiveFailures: st.Breaker.ConsecutiveFailures,
		UploadedBytes: st.BytesUploaded, DownloadedBytes: st.BytesDownloaded, DataLoss: st.DataLoss, ChecksumFailures: st.ChecksumFailures,
		Inflight: st.Inflight, Waiting: st.Waiting, Attempts: byOp(st.Attempts), Retries: byOp(st.Retries), Failures: byOp(st.Failures)}
	if st.Breaker.LastError != nil {
		h.LastError = st.Breaker.LastError.Error()
	}
	return h
}

func byOp(m map[tier2.Op]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for op, n := range m {
		if n > 0 {
			out[op.String()] = n
		}
	}
	return out
}

// Stream is one stream and its segments, oldest first.
type Stream struct {
	ID uint64 `json:"id"`
	// Records is the record count (offline: where the newest segment with
	// a local copy ends); DurableRecords is known online only.
	Records        uint64    `json:"records,omitempty"`
	DurableRecords uint64    `json:"durable_records,omitempty"`
	Error          string    `json:"error,omitempty"`
	Segments       []Segment `json:"segments"`
}

// Segment is one segment's row in the tier table.
type Segment struct {
	Stream     uint64 `json:"stream_id"`
	ID         uint64 `json:"segment_id"`
	BaseRecord uint64 `json:"base_record"`
	// Records is the record count (offline: from the local copies, zero
	// for a segment only tier 2 holds).
	Records uint64 `json:"records"`
	// Bytes is the durable record bytes; Compressed the warm artifact's size.
	Bytes      uint64 `json:"bytes"`
	Compressed uint64 `json:"compressed_bytes,omitempty"`
	Sealed     bool   `json:"sealed"`
	Tier0      bool   `json:"tier0"`
	Tier1      bool   `json:"tier1"`
	Tier2      bool   `json:"tier2"`
	Residency  string `json:"residency"`
	Tier2Key   string `json:"tier2_key,omitempty"`
}

// Tiers names the tier of a filter: "0", "1", "2", "tier0"... or "" for all.
func (s Segment) InTier(tier string) bool {
	switch tier {
	case "":
		return true
	case "0", "tier0":
		return s.Tier0
	case "1", "tier1":
		return s.Tier1
	case "2", "tier2":
		return s.Tier2
	}
	return false
}

// ValidTier reports whether tier is a filter InTier understands.
func ValidTier(tier string) bool {
	switch tier {
	case "", "0", "1", "2", "tier0", "tier1", "tier2":
		return true
	}
	return false
}

// Segments returns every segment row, stream by stream, filtered by
// stream (nil: all) and tier ("" all).
func (d *Dump) Segments(stream *uint64, tier string) []Segment {
	var out []Segment
	for _, s := range d.Streams {
		if stream != nil && s.ID != *stream {
			continue
		}
		for _, g := range s.Segments {
			if g.InTier(tier) {
				out = append(out, g)
			}
		}
	}
	return out
}

// fillTiers derives the tier rows from the segment rows; budgets are
// added by the caller when known.
func (d *Dump) fillTiers() {
	t := []Tier{{Name: "tier0"}, {Name: "tier1"}, {Name: "tier2"}}
	for _, s := range d.Streams {
		for _, g := range s.Segments {
			if g.Tier0 {
				t[0].Segments++
				t[0].Bytes += int64(g.Bytes)
			}
			if g.Tier1 {
				t[1].Segments++
				t[1].Bytes += int64(g.Compressed)
			}
			if g.Tier2 {
				t[2].Segments++
				t[2].Bytes += int64(g.Compressed)
			}
		}
	}
	d.Tiers = t
}
