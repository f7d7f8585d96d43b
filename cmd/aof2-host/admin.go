package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mattn/go-isatty"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/node"
)

func streamFlag(e *cmdEnv) *string {
	return e.flags.String("stream", "", "the stream (required)")
}

func requiredStream(s string) (core.StreamID, error) {
	if s == "" {
		return 0, usagef("-stream is required")
	}
	id, err := parseStream(s)
	return core.StreamID(id), err
}

// runSeal seals the stream's active segment so it can move to tier 1 and 2
// without waiting for it to fill.
func runSeal(ctx context.Context, e *cmdEnv) error {
	return runStreamOp(ctx, e, "sealed",
		func(ctx context.Context, c *client.Client, id core.StreamID) error {
			_, err := c.Seal(ctx, id)
			return err
		},
		func(ctx context.Context, s *core.Stream) error { return s.Seal(ctx) })
}

// runFlush makes every appended record of the stream durable.
func runFlush(ctx context.Context, e *cmdEnv) error {
	return runStreamOp(ctx, e, "flushed",
		func(ctx context.Context, c *client.Client, id core.StreamID) error {
			_, err := c.Flush(ctx, id)
			return err
		},
		func(ctx context.Context, s *core.Stream) error { return s.FlushAll(ctx) })
}

func runStreamOp(ctx context.Context, e *cmdEnv, done string,
	online func(context.Context, *client.Client, core.StreamID) error, offline func(context.Context, *core.Stream) error) error {
	t := targetFlags(e.flags)
	stream := streamFlag(e)
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	id, err := requiredStream(*stream)
	if err != nil {
		return err
	}
	if t.online() {
		c, err := t.dial(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := online(ctx, c, id); err != nil {
			return err
		}
	} else {
		err := withNode(ctx, t, e, func(n *node.Node) error {
			s, err := n.Store().Lookup(id)
			if err != nil {
				return err
			}
			return offline(ctx, s)
		})
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "stream %d %s\n", id, done)
	return nil
}

// runHydrate brings a stream's segments back into tier 0, with a progress
// bar on a terminal.
func runHydrate(ctx context.Context, e *cmdEnv) error {
	t := targetFlags(e.flags)
	stream := streamFlag(e)
	from := e.flags.Uint64("from", 0, "first segment id (default: the stream's first)")
	to := e.flags.Uint64("to", 0, "last segment id (default: the stream's last)")
	quiet := e.flags.Bool("quiet", false, "no progress output, even on a terminal")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	id, err := requiredStream(*stream)
	if err != nil {
		return err
	}
	if *to != 0 && *from > *to {
		return usagef("-from %d is after -to %d", *from, *to)
	}
	bar := newProgress(e.stderr, *quiet)
	if t.online() {
		c, err := t.dial(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		err = c.Hydrate(ctx, id, client.SegmentID(*from), client.SegmentID(*to), func(p client.HydrateProgress) {
			bar.update(p.Done, p.Total, uint64(p.Segment))
		})
		bar.finish()
		if err != nil {
			return err
		}
	} else {
		err := withNode(ctx, t, e, func(n *node.Node) error {
			return n.Hydrate(ctx, id, core.SegmentID(*from), core.SegmentID(*to), func(done, total int, seg core.SegmentID) {
				bar.update(done, total, uint64(seg))
			})
		})
		bar.finish()
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "stream %d: %d segments in tier 0\n", id, bar.done)
	return nil
}

// progress draws a one-line bar on a terminal and nothing otherwise.
type progress struct {
	w           io.Writer
	tty         bool
	done, total int
}

func newProgress(w io.Writer, quiet bool) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok && !quiet {
		p.tty = isatty.IsTerminal(f.Fd())
	}
	return p
}

func (p *progress) update(done, total int, seg uint64) {
	p.done, p.total = done, total
	if !p.tty || total == 0 {
		return
	}
	const width = 30
	n := done * width / total
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d segments (segment %d)", strings.Repeat("#", n), strings.Repeat(" ", width-n), done, total, seg)
}

func (p *progress) finish() {
	if p.tty && p.total > 0 {
		fmt.Fprintln(p.w)
	}
}

// runManifestSnapshot snapshots a stream's manifest now.
func runManifestSnapshot(ctx context.Context, e *cmdEnv) error {
	return runStreamOp(ctx, e, "manifest snapshotted (tier 2 gets it at the host's next scan)",
		func(ctx context.Context, c *client.Client, id core.StreamID) error {
			_, err := c.SnapshotManifest(ctx, id)
			return err
		},
		func(ctx context.Context, s *core.Stream) error {
			tl := s.TierLog()
			if tl == nil {
				return fmt.Errorf("stream %d has no manifest", s.ID())
			}
			_, err := tl.Snapshot(ctx)
			return err
		})
}

// runUploads pauses or resumes a running host's segment uploads.
func runUploads(paused bool) func(context.Context, *cmdEnv) error {
	return func(ctx context.Context, e *cmdEnv) error {
		t := targetFlags(e.flags)
		if _, err := e.parse(0, 0); err != nil {
			return err
		}
		if !t.online() {
			return usagef("-addr is required: the switch lives in the running host (it ends with it)")
		}
		c, err := t.dial(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.SetUploadsPaused(ctx, paused); err != nil {
			return err
		}
		if paused {
			fmt.Fprintln(e.stdout, "segment uploads paused until 'aof2-host uploads resume' or a restart; sealed segments stay in tier 0 meanwhile (aof_tier2_uploads_paused 1)")
		} else {
			fmt.Fprintln(e.stdout, "segment uploads resumed")
		}
		return nil
	}
}

// runSegmentsRetire has a running host's retention delete a stream's
// segments below -below.
func runSegmentsRetire(ctx context.Context, e *cmdEnv) error {
	t := targetFlags(e.flags)
	stream := streamFlag(e)
	below := e.flags.Uint64("below", 0, "delete the segments with ids below this one (required; the stream keeps at least its newest segment)")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	id, err := requiredStream(*stream)
	if err != nil {
		return err
	}
	if *below == 0 {
		return usagef("-below is required")
	}
	if !t.online() {
		return usagef("-addr is required: the running host's retention does the deletes")
	}
	c, err := t.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	n, err := c.RetireSegments(ctx, id, core.SegmentID(*below))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "stream %d: %d segments below %d to retire; retention deletes them oldest first, each once uploaded (watch 'aof2-host segments list -stream %d')\n", id, n, *below, id)
	return nil
}
