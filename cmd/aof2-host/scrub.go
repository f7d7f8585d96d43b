package main

import (
	"context"
	"fmt"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/host/node"
)

// runScrub runs one scrub pass now (docs/tiering.md#healing): every copy
// of every sealed segment is checked against the manifest and repaired
// from a verified copy where one exists. Online through the admin API (the
// host's pacing applies), or offline on the data directory. Findings that
// remain unrepaired exit 4.
func runScrub(ctx context.Context, e *cmdEnv) error {
	t := targetFlags(e.flags)
	stream := e.flags.String("stream", "", "only this stream (default: every stream)")
	quiet := e.flags.Bool("quiet", false, "no progress output, even on a terminal")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	var sid *core.StreamID
	if *stream != "" {
		id, err := requiredStream(*stream)
		if err != nil {
			return err
		}
		sid = &id
	}
	bar := newProgress(e.stderr, *quiet)
	var sum client.ScrubSummary
	if t.online() {
		c, err := t.dial(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		sum, err = c.Scrub(ctx, sid, func(p client.ScrubProgress) { bar.update(p.Done, p.Total, uint64(p.Segment)) })
		bar.finish()
		if err != nil {
			return err
		}
	} else {
		err := withNode(ctx, t, e, func(n *node.Node) error {
			s, err := n.Scrub(ctx, sid, func(p coordinator.ScrubProgress) { bar.update(p.Done, p.Total, uint64(p.Segment)) })
			if err != nil {
				return err
			}
			sum = client.ScrubSummary{Segments: s.Segments, BytesVerified: map[string]uint64{}, Tier2Checked: s.Tier2Checked,
				Tier2FullGets: s.Tier2FullGets, Unrepaired: s.Unrepaired()}
			for tier, n := range s.BytesVerified {
				sum.BytesVerified[tier] = uint64(max(n, 0))
			}
			for _, f := range s.Findings {
				sum.Findings = append(sum.Findings, client.ScrubFinding{Stream: f.Stream, Segment: f.Segment, Tier: f.Tier,
					Problem: f.Problem, Repaired: f.Repaired, Detail: f.Detail})
			}
			return nil
		})
		bar.finish()
		if err != nil {
			return err
		}
	}
	for _, f := range sum.Findings {
		verdict := "REPAIRED"
		if !f.Repaired {
			verdict = "UNREPAIRED"
		}
		fmt.Fprintf(e.stdout, "%s stream %d segment %d %s %s: %s\n", verdict, f.Stream, f.Segment, f.Tier, f.Problem, f.Detail)
	}
	fmt.Fprintf(e.stdout, "scrub: %d sealed segments checked; verified %d tier-0 bytes, %d tier-1 bytes, %d tier-2 bytes (%d objects checked, %d downloaded in full); %d findings, %d unrepaired\n",
		sum.Segments, sum.BytesVerified["tier0"], sum.BytesVerified["tier1"], sum.BytesVerified["tier2"], sum.Tier2Checked, sum.Tier2FullGets,
		len(sum.Findings), sum.Unrepaired)
	if sum.Unrepaired > 0 {
		return findingsError{sum.Unrepaired}
	}
	return nil
}
