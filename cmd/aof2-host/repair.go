package main

import (
	"context"
	"fmt"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/node"
)

// runRepair settles a damaged stream (STREAM_DAMAGED): with -accept-loss
// the operator decides that the damaged records are lost, so the stream
// takes appends again (docs/tiering.md#damage). Online through the admin
// API, or offline on the data directory.
func runRepair(ctx context.Context, e *cmdEnv) error {
	t := targetFlags(e.flags)
	stream := streamFlag(e)
	accept := e.flags.Bool("accept-loss", false, "accept that the stream's damaged records are lost: fill them, seal the segment, record the decision in the manifest, take appends again")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	id, err := requiredStream(*stream)
	if err != nil {
		return err
	}
	if !*accept {
		return usagef("repair needs -accept-loss: the only repair an operator decides is accepting a loss (docs/tiering.md#damage)")
	}
	var rep client.LossReport
	if t.online() {
		c, err := t.dial(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		if rep, err = c.AcceptLoss(ctx, id); err != nil {
			return err
		}
	} else {
		err := withNode(ctx, t, e, func(n *node.Node) error {
			s, err := n.Store().Lookup(id)
			if err != nil {
				return err
			}
			r, err := s.AcceptLoss(ctx)
			if err != nil {
				return err
			}
			rep = client.LossReport{Segment: r.Segment, Quarantine: r.Quarantine, Records: r.Records,
				DroppedBytes: uint64(max(r.DroppedBytes, 0)), Placeholder: r.Placeholder}
			for _, f := range r.Filled {
				rep.Filled = append(rep.Filled, [2]uint64{uint64(f[0]), uint64(f[1])})
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	printLoss(e, id, rep)
	return nil
}

func printLoss(e *cmdEnv, id core.StreamID, rep client.LossReport) {
	if rep.Placeholder {
		fmt.Fprintf(e.stdout, "stream %d: loss accepted: segment %d's file was gone; an empty sealed segment took its id\n", id, rep.Segment)
	} else {
		fmt.Fprintf(e.stdout, "stream %d: loss accepted in segment %d: %d intact records kept, %d damaged ranges filled, %d bytes after the last intact record dropped\n",
			id, rep.Segment, rep.Records, len(rep.Filled), rep.DroppedBytes)
		for _, r := range rep.Filled {
			fmt.Fprintf(e.stdout, "  filled [%d, %d)\n", r[0], r[1])
		}
		for _, q := range rep.Quarantine {
			fmt.Fprintf(e.stdout, "  original bytes kept in %s\n", q)
		}
	}
	fmt.Fprintf(e.stdout, "stream %d takes appends again, in the next segment; the decision is recorded in its manifest\n", id)
}
