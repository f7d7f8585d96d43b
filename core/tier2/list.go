package tier2

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/logthrottle"
	"github.com/aof2/aof2/pluginapi"
)

// Listed is one object of a stream listing, mapped back to its identity.
type Listed struct {
	Ref  Ref
	Info pluginapi.ObjectInfo
	// Meta is the parsed object metadata; MetaErr is set when it is
	// malformed (reconciliation reports it, like an unknown key).
	Meta    ObjectMeta
	MetaErr error
}

// Unknown is an object under the stream's prefix that the layout does
// not name. It is reported, never deleted automatically.
type Unknown struct {
	Info   pluginapi.ObjectInfo
	Reason string
}

// Listing is what tier 2 holds for one stream, in key order (so ids
// ascend within each kind).
type Listing struct {
	Stream         types.StreamID
	Segments       []Listed
	ManifestChunks []Listed
	Snapshots      []Listed
	Reservations   []Listed
	Lost           []Listed
	Unknown        []Unknown
}

// ListStream lists every object of a stream, for start-up reconciliation
// and tooling (steady state needs no LIST: the manifest is
// authoritative). A failed page is retried from the last key seen.
func (s *Store) ListStream(ctx context.Context, stream types.StreamID) (Listing, error) {
	prefix := s.layout.StreamPrefix(stream)
	out := Listing{Stream: stream}
	var after string
	err := s.run(ctx, OpList, prefix, func(ctx context.Context) error {
		return s.request(ctx, ClassList, func(ctx context.Context) error {
			return s.b.List(ctx, pluginapi.ListRequest{Prefix: prefix, StartAfter: after}, func(page []pluginapi.ObjectInfo) error {
				for _, info := range page {
					if info.Key <= after {
						return fmt.Errorf("%w: List returned %q after %q", pluginapi.ErrContractViolation, info.Key, after)
					}
					after = info.Key
					s.classify(&out, info)
				}
				return nil
			})
		})
	})
	if err != nil {
		return Listing{}, err
	}
	return out, nil
}

func (s *Store) classify(out *Listing, info pluginapi.ObjectInfo) {
	ref, err := s.layout.Parse(info.Key)
	if err != nil || ref.Stream != out.Stream {
		reason := "names another stream"
		var uk *UnknownKeyError
		if errors.As(err, &uk) {
			reason = uk.Reason
		}
		out.Unknown = append(out.Unknown, Unknown{Info: info, Reason: reason})
		return
	}
	l := Listed{Ref: ref, Info: info}
	l.Meta, l.MetaErr = ParseMetadata(info.Metadata)
	switch ref.Kind {
	case KindSegment:
		out.Segments = append(out.Segments, l)
	case KindManifestChunk:
		out.ManifestChunks = append(out.ManifestChunks, l)
	case KindSnapshot:
		out.Snapshots = append(out.Snapshots, l)
	case KindReservation:
		out.Reservations = append(out.Reservations, l)
	case KindLost:
		out.Lost = append(out.Lost, l)
	}
}

// Delete removes an object; a missing one is success (retention may
// repeat a delete after a crash).
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := pluginapi.ValidateKey(key); err != nil {
		return fmt.Errorf("tier2 delete: %w", err)
	}
	err := s.run(ctx, OpDelete, key, func(ctx context.Context) error {
		err := s.request(ctx, ClassDelete, func(ctx context.Context) error { return s.b.Delete(ctx, key) })
		if errors.Is(err, pluginapi.ErrNotFound) {
			return nil
		}
		return err
	})
	args := append(refArgs(s.layout, key), "key", key)
	if err != nil {
		s.logs.Fail(logthrottle.Failure{Msg: "tier2_delete_failed", Reason: Reason(err), Recovered: "tier2_delete_recovered",
			Args: append(args, "error", err.Error())})
		return err
	}
	s.logs.Succeed("tier2_delete_failed", "")
	s.log.Info("tier2_delete_success", args...)
	return nil
}

// DeleteSegment removes a segment artifact (retention).
func (s *Store) DeleteSegment(ctx context.Context, k types.SegmentKey) error {
	return s.Delete(ctx, s.layout.SegmentObjectKey(k))
}

// errStopList ends a List after the object a skip-scan needed.
var errStopList = errors.New("tier2: stop listing")

// ListStreams returns the ids of the streams that have objects in tier 2,
// in key order (decimal ids sort as strings). It is a skip-scan: one List
// request of one object per stream, each starting past the previous
// stream's keys, so it costs O(streams) requests, not O(objects). The
// start-up check for streams this node lost uses it; steady state never
// lists.
func (s *Store) ListStreams(ctx context.Context) ([]types.StreamID, error) {
	root := s.layout.prefix + streamsDir
	var out []types.StreamID
	after := ""
	for {
		var first *pluginapi.ObjectInfo
		err := s.run(ctx, OpList, root, func(ctx context.Context) error {
			return s.request(ctx, ClassList, func(ctx context.Context) error {
				first = nil
				err := s.b.List(ctx, pluginapi.ListRequest{Prefix: root, StartAfter: after, PageSize: 1}, func(page []pluginapi.ObjectInfo) error {
					if len(page) == 0 {
						return nil
					}
					first = &page[0]
					return errStopList
				})
				if errors.Is(err, errStopList) {
					return nil
				}
				return err
			})
		})
		if err != nil {
			return nil, err
		}
		if first == nil {
			return out, nil
		}
		if first.Key <= after {
			return nil, fmt.Errorf("%w: List returned %q after %q", pluginapi.ErrContractViolation, first.Key, after)
		}
		next := first.Key // not a stream's object: step over it alone
		if dir, _, ok := strings.Cut(strings.TrimPrefix(first.Key, root), "/"); ok {
			if id, ok := parseDecimal(dir); ok {
				out = append(out, types.StreamID(id))
				// '~' sorts after every ASCII byte the layout uses below a
				// stream directory; a stranger key past it is visited alone.
				next = max(first.Key, root+dir+"/~")
			}
		}
		after = next
	}
}
