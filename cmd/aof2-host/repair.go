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
	nodeWAL := e.flags.Bool("node-wal", false, "with -accept-loss, offline: accept that what a damaged node WAL holds past its damage is lost; every stream's tail is sealed, the WAL's files are kept in <data dir>/wal.lost-*, every stream takes appends again (docs/adr-node-wal.md)")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	if *nodeWAL {
		return repairNodeWAL(ctx, e, t, *stream, *accept)
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
				DroppedBytes: uint64(max(r.DroppedBytes, 0)), Placeholder: r.Placeholder, Lost: r.Lost,
				FromNodeWAL: r.FromNodeWAL, NodeWALKept: r.NodeWALKept}
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

// repairNodeWAL opens the data directory with the node WAL's loss
// accepted (core.Config.NodeWALAcceptLoss) and says what the open did.
func repairNodeWAL(ctx context.Context, e *cmdEnv, t *target, stream string, accept bool) error {
	switch {
	case !accept:
		return usagef("repair -node-wal needs -accept-loss: the only repair an operator decides is accepting a loss (docs/adr-node-wal.md)")
	case stream != "":
		return usagef("repair -node-wal settles every stream: drop -stream")
	case t.online():
		return usagef("repair -node-wal works offline: stop the host, then run it on its data directory without -addr (a host whose WAL is damaged refuses appends on every stream)")
	}
	var rep *core.WALLossReport
	var refused []string
	err := withNode(ctx, t, e, func(n *node.Node) error {
		st := n.Store()
		rep = st.NodeWALLoss()
		for _, id := range st.Streams() {
			if s, err := st.Lookup(id); err == nil && s.Info().Refused != nil {
				refused = append(refused, fmt.Sprintf("  stream %d refuses appends: %v", id, s.Info().Refused))
			}
		}
		return nil
	}, func(o *node.Options) error {
		if !o.Core.NodeWAL {
			return usagef("the node WAL is off in this configuration (segment.node_wal): repair -node-wal runs with the configuration the host runs with")
		}
		o.Core.NodeWALAcceptLoss = true
		return nil
	})
	if err != nil {
		return err
	}
	if rep == nil {
		fmt.Fprintln(e.stdout, "the node WAL replayed whole: no loss of the WAL to accept")
		for _, line := range refused {
			fmt.Fprintln(e.stdout, line)
		}
		return nil
	}
	fmt.Fprintf(e.stdout, "node WAL loss accepted: %s\n", rep.Cause)
	for _, s := range rep.Streams {
		line := fmt.Sprintf("  stream %d: %d records", s.Stream, s.Records)
		if s.PastDamage > 0 {
			line += fmt.Sprintf(" (%d of them from past the WAL's damage)", s.PastDamage)
		}
		if s.Sealed != 0 {
			line += fmt.Sprintf(", tail segment %d sealed", s.Sealed)
		}
		if s.Refused != "" {
			line += ", still refuses appends (its own damage: aof2-host repair -stream " + fmt.Sprint(s.Stream) + " -accept-loss): " + s.Refused
		}
		fmt.Fprintln(e.stdout, line)
	}
	fmt.Fprintf(e.stdout, "the WAL's files are kept in %s (inside the data directory); every stream takes appends in a new segment, and the decision is recorded in each stream's manifest\n", rep.KeptIn)
	return nil
}

func printLoss(e *cmdEnv, id core.StreamID, rep client.LossReport) {
	switch {
	case rep.Placeholder:
		fmt.Fprintf(e.stdout, "stream %d: loss accepted: segment %d's file was gone; an empty sealed segment took its id\n", id, rep.Segment)
	case rep.Lost:
		fmt.Fprintf(e.stdout, "stream %d: loss accepted: segment %d could not be read and no tier held a copy; a lost stub keeps its bounds, its records read as lost\n", id, rep.Segment)
	default:
		fmt.Fprintf(e.stdout, "stream %d: loss accepted in segment %d: %d intact records kept, %d damaged ranges filled, %d bytes after the last intact record dropped\n",
			id, rep.Segment, rep.Records, len(rep.Filled), rep.DroppedBytes)
		for _, r := range rep.Filled {
			fmt.Fprintf(e.stdout, "  filled [%d, %d)\n", r[0], r[1])
		}
		if rep.FromNodeWAL > 0 {
			fmt.Fprintf(e.stdout, "  %d of those records written back from the node WAL's copy\n", rep.FromNodeWAL)
		}
	}
	for _, q := range rep.Quarantine {
		fmt.Fprintf(e.stdout, "  original bytes kept in %s\n", q)
	}
	if rep.NodeWALKept > 0 {
		fmt.Fprintf(e.stdout, "  %d of the node WAL's records for the stream could not be placed: the WAL keeps them, and its checkpoints stay stopped, until its own loss is accepted (offline: aof2-host repair -node-wal -accept-loss)\n", rep.NodeWALKept)
	}
	fmt.Fprintf(e.stdout, "stream %d takes appends again, in the next segment; the decision is recorded in its manifest\n", id)
}
