package dump

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the dump as indented JSON.
func (d *Dump) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}

// WriteTable writes the tier summary, the queues and one row per segment.
func (d *Dump) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "AOF2 dump (%s) of %s at %s\n\n", d.Source, d.DataDir, d.Taken.Format("2006-01-02T15:04:05Z"))
	fmt.Fprintln(tw, "TIER\tSEGMENTS\tBYTES\tBUDGET")
	for _, t := range d.Tiers {
		budget := "-"
		if t.MaxBytes > 0 {
			budget = Bytes(t.MaxBytes)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", t.Name, t.Segments, Bytes(t.Bytes), budget)
	}
	if len(d.Queues) > 0 || d.Hydration != nil {
		fmt.Fprintln(tw)
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(d.Queues)) {
			parts = append(parts, fmt.Sprintf("%s=%d", k, d.Queues[k]))
		}
		fmt.Fprintf(tw, "queues: %s\n", strings.Join(parts, " "))
		if h := d.Hydration; h != nil {
			fmt.Fprintf(tw, "hydration: in flight %d, p50 %v p90 %v p99 %v\n", h.InFlight, h.P50, h.P90, h.P99)
		}
		if t := d.Tier2; t != nil {
			fmt.Fprintf(tw, "tier 2: breaker %s, uploaded %s, downloaded %s, retries %s, failures %s\n",
				t.Breaker, Bytes(int64(t.UploadedBytes)), Bytes(int64(t.DownloadedBytes)), counts(t.Retries), counts(t.Failures))
			if t.LastError != "" {
				fmt.Fprintf(tw, "tier 2 last error: %s\n", t.LastError)
			}
		}
	}
	for _, s := range d.Streams {
		fmt.Fprintln(tw)
		head := fmt.Sprintf("stream %d: %s", s.ID, plural(len(s.Segments), "segment"))
		if d.Source == Online {
			head += fmt.Sprintf(", %d records (%d durable)", s.Records, s.DurableRecords)
		}
		if s.Error != "" {
			head += ", ERROR: " + s.Error
		}
		fmt.Fprintln(tw, head)
		if len(s.Segments) == 0 {
			continue
		}
		fmt.Fprintln(tw, "  SEGMENT\tBASE\tRECORDS\tBYTES\tZSTD\tSTATE\tT0\tT1\tT2\tRESIDENCY")
		for _, g := range s.Segments {
			state := "active"
			if g.Sealed {
				state = "sealed"
			}
			fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.ID, g.BaseRecord, count(g.Records, g.Sealed || d.Source == Online),
				Bytes(int64(g.Bytes)), dash(g.Compressed), state, mark(g.Tier0), mark(g.Tier1), mark(g.Tier2), g.Residency)
		}
	}
	if len(d.Problems) > 0 {
		fmt.Fprintln(tw, "\nPROBLEMS")
		for _, p := range d.Problems {
			fmt.Fprintf(tw, "  %s\n", p)
		}
	}
	return tw.Flush()
}

func mark(b bool) string {
	if b {
		return "●"
	}
	return "·"
}

func dash(n uint64) string {
	if n == 0 {
		return "-"
	}
	return Bytes(int64(n))
}

func count(n uint64, known bool) string {
	if !known {
		return "-"
	}
	return fmt.Sprint(n)
}

// Bytes formats n in binary units (1.5 MiB).
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// counts formats per-operation counters as "put=3 get=1", or "none".
func counts(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
