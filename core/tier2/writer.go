package tier2

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aof2/aof2/pluginapi"
)

// WriterKey is the key of the prefix's writer record, under the prefix
// (docs/adr-fencing.md): which node may mutate the prefix, at which
// epoch. It is created if_absent and only ever replaced if_match on the
// etag read, so every claim is a compare-and-swap and no clock is trusted.
const WriterKey = "_aof2/writer"

// WriterRecord is the content of the writer record.
type WriterRecord struct {
	StoreID string `json:"store_id"`
	// Epoch grows by one with every claim of the prefix.
	Epoch  uint64 `json:"epoch"`
	NodeID string `json:"node_id"`
	// Host and ClaimedAt are for people.
	Host      string `json:"host,omitempty"`
	ClaimedAt string `json:"claimed_at,omitempty"`
}

// ErrClaimRace: the writer record changed between its read and a
// conditional write of it (another node claimed meanwhile).
var ErrClaimRace = errors.New("tier2: the writer record changed meanwhile")

func (s *Store) writerKey() string { return s.layout.prefix + WriterKey }

// ReadWriter reads the writer record and its etag; an error matching
// pluginapi.ErrNotFound when the prefix has none.
func (s *Store) ReadWriter(ctx context.Context) (WriterRecord, string, error) {
	if _, err := s.Stat(ctx, s.writerKey()); err != nil {
		return WriterRecord{}, "", err
	}
	data, info, err := s.Fetch(ctx, s.writerKey(), Expect{})
	if err != nil {
		return WriterRecord{}, "", err
	}
	w, err := decodeWriterRecord(data)
	if err != nil {
		return WriterRecord{}, "", fmt.Errorf("%w: %s %v", ErrIncompatibleStore, s.writerKey(), err)
	}
	return w, info.ETag, nil
}

// decodeWriterRecord decodes a writer record's bytes: a claim names an
// epoch (from 1) and a node.
func decodeWriterRecord(data []byte) (WriterRecord, error) {
	var w WriterRecord
	if err := json.Unmarshal(data, &w); err != nil || w.Epoch == 0 || w.NodeID == "" {
		return WriterRecord{}, fmt.Errorf("does not decode (%v)", err)
	}
	return w, nil
}

// WriterETag is the writer record's current etag (a Head): a writer
// compares it with its claim's before it mutates the prefix.
func (s *Store) WriterETag(ctx context.Context) (string, error) {
	info, err := s.Stat(ctx, s.writerKey())
	return info.ETag, err
}

// ClaimWriter stores w as the writer record: created if the prefix has
// none (etag ""), else replacing the record whose etag was read
// (if_match). It returns the new record's etag, or ErrClaimRace when the
// record is not (or no longer) the one expected. An attempt whose answer
// was lost and that stored w is recognised by its bytes.
func (s *Store) ClaimWriter(ctx context.Context, w WriterRecord, etag string) (string, error) {
	data, err := json.MarshalIndent(w, "", "  ")
	if err != nil {
		return "", err
	}
	data = append(data, '\n')
	key := s.writerKey()
	req := pluginapi.PutRequest{Key: key, Size: uint64(len(data)), CRC64: pluginapi.CRC64(data), IfAbsent: etag == "", IfMatch: etag,
		Metadata: map[string]string{MetaCRC64: fmt.Sprintf("%016x", pluginapi.CRC64(data)), MetaSize: fmt.Sprint(len(data))}}
	var got string
	err = s.run(ctx, OpUpload, key, func(ctx context.Context) error {
		caps, err := s.caps(ctx)
		if err != nil {
			return err
		}
		if !caps.IfAbsent || !caps.IfMatch {
			return fmt.Errorf("tier2: claiming the writer record needs a backend with if_absent and if_match: %w", errors.ErrUnsupported)
		}
		var info pluginapi.ObjectInfo
		err = s.request(ctx, ClassPut, func(ctx context.Context) (err error) {
			info, err = s.b.Put(ctx, req, bytes.NewReader(data))
			return err
		})
		if errors.Is(err, pluginapi.ErrAlreadyExists) || errors.Is(err, pluginapi.ErrPrecondition) {
			cur, _, ferr := s.Fetch(ctx, key, Expect{})
			if ferr == nil && bytes.Equal(cur, data) {
				got, err = "", nil // an earlier attempt stored it
				h, herr := s.head(ctx, key)
				if herr != nil {
					return herr
				}
				got = h.ETag
				return nil
			}
			return fmt.Errorf("%w: %w", ErrClaimRace, err)
		}
		if err != nil {
			return err
		}
		got = info.ETag
		return nil
	})
	if err != nil {
		return "", err
	}
	s.log.Info("tier2_writer_claimed", "key", key, "epoch", w.Epoch, "node_id", w.NodeID, "etag", got)
	return got, nil
}
