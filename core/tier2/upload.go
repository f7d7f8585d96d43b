package tier2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/logthrottle"
	"github.com/aof2/aof2/pluginapi"
)

// Upload describes one object to store: its key, its bytes (Path for a
// local file, sent with PutFile where the backend has it, or Data), and
// its metadata.
type Upload struct {
	Key string
	// Path is an absolute path to the bytes, inside the backend's staging
	// directory if it has one. Exactly one of Path and Data is used.
	Path string
	Data []byte
	// Metadata is stored with the object; the store adds crc64 and size.
	Metadata map[string]string
	// WantCRC64, when HasWantCRC64, is the checksum the caller computed
	// earlier: a local file that no longer matches is refused (a
	// ChecksumError) rather than uploaded.
	WantCRC64    uint64
	HasWantCRC64 bool
	// ReplaceETag, when set, overwrites the object under Key whose etag it
	// is (a Put conditional on it, if_match) instead of storing a new one
	// (if_absent): ReplaceSegment.
	ReplaceETag string
	// Contended says another writer may have created Key first and that
	// this is an answer, not an accident (a commit-log index, after a
	// takeover): the DataLossError is returned as usual but neither
	// counted nor logged as data loss. A caller that finds it is one
	// reports it with ReportDataLoss.
	Contended bool
}

// Uploaded is the outcome of a successful upload.
type Uploaded struct {
	Key   string
	ETag  string
	Size  uint64
	CRC64 uint64
	// AlreadyPresent is true when the key already held these very bytes
	// (an earlier attempt or run stored them): the upload is done.
	AlreadyPresent bool
}

// UploadSegment stores a segment's tier-1 artifact (the seekable zstd
// file at path) under the layout's key, with the segment's metadata.
func (s *Store) UploadSegment(ctx context.Context, k types.SegmentKey, path string, seg SegmentInfo) (Uploaded, error) {
	ref, err := segmentRef(k)
	if err != nil {
		return Uploaded{}, err
	}
	return s.upload(ctx, Upload{Key: s.layout.Key(ref), Path: path, Contended: seg.Shared}, ref, seg)
}

// UploadSegmentData is UploadSegment for an artifact held in memory (a
// data directory on a file system the plugin cannot open by path, such as
// the in-memory crash-test file system).
func (s *Store) UploadSegmentData(ctx context.Context, k types.SegmentKey, data []byte, seg SegmentInfo) (Uploaded, error) {
	ref, err := segmentRef(k)
	if err != nil {
		return Uploaded{}, err
	}
	return s.upload(ctx, Upload{Key: s.layout.Key(ref), Data: data, Contended: seg.Shared}, ref, seg)
}

func segmentRef(k types.SegmentKey) (Ref, error) {
	if k.Segment > types.MaxSegmentID {
		return Ref{}, fmt.Errorf("%w: segment id %d does not fit in 32 bits", ErrInvalidKey, k.Segment)
	}
	return Ref{Kind: KindSegment, Stream: k.Stream, ID: uint64(k.Segment)}, nil
}

// ReplaceSegment overwrites the object of segment k whose etag is badETag
// — one a full read proved damaged at rest — with the verified artifact
// at path (or data, when path is empty): a Put conditional on that etag,
// verified like any upload, so that nothing but the damaged object is ever
// overwritten. A backend without if_match gets errors.ErrUnsupported:
// tier 2 is then never overwritten.
func (s *Store) ReplaceSegment(ctx context.Context, k types.SegmentKey, path string, data []byte, seg SegmentInfo, badETag string) (Uploaded, error) {
	ref, err := segmentRef(k)
	if err != nil {
		return Uploaded{}, err
	}
	if badETag == "" {
		return Uploaded{}, fmt.Errorf("tier2 replace %s: %w: no etag names the damaged object", k, pluginapi.ErrInvalidArgument)
	}
	u := Upload{Key: s.layout.Key(ref), Path: path, ReplaceETag: badETag}
	if path == "" {
		u.Data = data
	}
	return s.upload(ctx, u, ref, seg)
}

// UploadManifestChunk stores a sealed manifest chunk.
func (s *Store) UploadManifestChunk(ctx context.Context, stream types.StreamID, chunk uint64, data []byte) (Uploaded, error) {
	ref := Ref{Kind: KindManifestChunk, Stream: stream, ID: chunk}
	return s.upload(ctx, Upload{Key: s.layout.Key(ref), Data: data}, ref, SegmentInfo{})
}

// CreateManifestChunk is UploadManifestChunk for a writer extending the
// stream's commit log (docs/adr-fencing.md): index chunk taken by other
// bytes is a quiet *DataLossError (Upload.Contended), which the caller
// tells apart from a loss (ReportDataLoss) — a fence of a later writer,
// or this writer's own fence of an earlier attempt.
func (s *Store) CreateManifestChunk(ctx context.Context, stream types.StreamID, chunk uint64, data []byte) (Uploaded, error) {
	ref := Ref{Kind: KindManifestChunk, Stream: stream, ID: chunk}
	return s.upload(ctx, Upload{Key: s.layout.Key(ref), Data: data, Contended: true}, ref, SegmentInfo{})
}

// ReportDataLoss counts and logs, as an upload does, a data loss that a
// contended upload returned quietly.
func (s *Store) ReportDataLoss(err error) {
	var dl *DataLossError
	if !errors.As(err, &dl) {
		return
	}
	s.m.lostData()
	// Each key's data loss is logged (its own group), at error, and
	// rate-limited as an upload's (a job retried every scan).
	s.logs.Fail(logthrottle.Failure{Msg: "tier2_upload_failed", Reason: Reason(err), Level: hclog.Error, Group: dl.Key,
		Args: []any{"key", dl.Key, "data_loss", true, "error", err.Error()}})
}

// SnapshotPosition is the manifest log position whose state a snapshot
// holds.
type SnapshotPosition struct {
	ChunkIndex, ChunkOffset uint64
}

// UploadSnapshot stores a manifest snapshot, its log position in the
// object's metadata (a reader picks snapshots by position with a Head).
// An id holding other bytes is a quiet *DataLossError (Upload.Contended).
func (s *Store) UploadSnapshot(ctx context.Context, stream types.StreamID, snapshot uint64, pos SnapshotPosition, data []byte) (Uploaded, error) {
	ref := Ref{Kind: KindSnapshot, Stream: stream, ID: snapshot}
	md := map[string]string{
		MetaSnapshotChunk:  strconv.FormatUint(pos.ChunkIndex, 10),
		MetaSnapshotOffset: strconv.FormatUint(pos.ChunkOffset, 10),
	}
	// Contended: after a takeover the previous writer may have stored a
	// snapshot under the id this writer's log takes next.
	return s.upload(ctx, Upload{Key: s.layout.Key(ref), Data: data, Metadata: md, Contended: true}, ref, SegmentInfo{})
}

// Put stores an arbitrary object (its key is used as given, not under
// the layout). It is idempotent like the typed uploads.
func (s *Store) Put(ctx context.Context, u Upload) (Uploaded, error) {
	return s.upload(ctx, u, Ref{}, SegmentInfo{})
}

// upload is the idempotent upload: if_absent Put, then a Head proving the
// object is there with our checksum. A key that already holds the same
// bytes is success; different bytes are a DataLossError, never an
// overwrite.
func (s *Store) upload(ctx context.Context, u Upload, ref Ref, seg SegmentInfo) (Uploaded, error) {
	if err := pluginapi.ValidateKey(u.Key); err != nil {
		return Uploaded{}, fmt.Errorf("tier2 upload: %w", err)
	}
	crc, size, err := sourceSum(u)
	if err != nil {
		return Uploaded{}, fmt.Errorf("tier2 upload %q: %w", u.Key, err)
	}
	if u.HasWantCRC64 && crc != u.WantCRC64 {
		return Uploaded{}, &ChecksumError{Key: u.Key, What: "local source", Want: u.WantCRC64, Got: crc}
	}
	md := make(map[string]string, len(u.Metadata)+8)
	for k, v := range u.Metadata {
		md[k] = v
	}
	if ref.Kind != 0 {
		for k, v := range objectMetadata(ref, seg, crc, size) {
			md[k] = v
		}
	}
	md[MetaCRC64] = fmt.Sprintf("%016x", crc)
	md[MetaSize] = fmt.Sprintf("%d", size)
	req := pluginapi.PutRequest{Key: u.Key, Size: size, CRC64: crc, Metadata: md, IfAbsent: u.ReplaceETag == "", IfMatch: u.ReplaceETag}

	var res Uploaded
	err = s.run(ctx, OpUpload, u.Key, func(ctx context.Context) (err error) {
		res, err = s.uploadAttempt(ctx, u, req)
		return err
	})
	logArgs := append(refArgs(s.layout, u.Key), "key", u.Key, "bytes", size, "crc64", fmt.Sprintf("%016x", crc))
	if u.ReplaceETag != "" {
		logArgs = append(logArgs, "replaced_etag", u.ReplaceETag)
	}
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Stopped by its caller (the host shutting down): not a failure of
		// tier 2; the job runs again after the next start.
		s.log.Debug("tier2_upload_canceled", logArgs...)
		return Uploaded{}, err
	}
	if err != nil {
		// Rate-limited: a job retried every scan while tier 2 stays
		// broken would log each time (docs/adr-host.md).
		f := logthrottle.Failure{Msg: "tier2_upload_failed", Reason: Reason(err), Recovered: "tier2_upload_recovered"}
		if errors.Is(err, ErrDataLoss) && u.Contended {
			f.Level, f.Group, f.Args = hclog.Warn, u.Key, append(logArgs, "taken", true, "error", err.Error())
		} else if errors.Is(err, ErrDataLoss) {
			s.m.lostData()
			// Each key's data loss is logged (its own group), at error.
			f.Level, f.Group, f.Args = hclog.Error, u.Key, append(logArgs, "data_loss", true, "error", err.Error())
		} else {
			f.Args = append(logArgs, "error", err.Error())
		}
		s.logs.Fail(f)
		return Uploaded{}, err
	}
	if !res.AlreadyPresent {
		s.m.uploaded(size)
	}
	s.logs.Succeed("tier2_upload_failed", "")
	s.logs.Succeed("tier2_upload_failed", u.Key, "key", u.Key)
	s.log.Info("tier2_upload_success", append(logArgs, "etag", res.ETag, "already_present", res.AlreadyPresent)...)
	return res, nil
}

func sourceSum(u Upload) (crc, size uint64, err error) {
	switch {
	case u.Path != "" && u.Data != nil:
		return 0, 0, fmt.Errorf("%w: both a path and data", pluginapi.ErrInvalidArgument)
	case u.Path != "":
		return pluginapi.FileCRC64(u.Path)
	}
	return pluginapi.CRC64(u.Data), uint64(len(u.Data)), nil
}

func (s *Store) uploadAttempt(ctx context.Context, u Upload, req pluginapi.PutRequest) (Uploaded, error) {
	caps, err := s.caps(ctx)
	if err != nil {
		return Uploaded{}, err
	}
	if req.IfMatch != "" && !caps.IfMatch {
		return Uploaded{}, fmt.Errorf("tier2: replacing %q needs a backend with if_match: %w", req.Key, errors.ErrUnsupported)
	}
	if req.IfAbsent && !caps.IfAbsent {
		// No atomic if_absent: look first. A concurrent writer of the same
		// key could still race us; one writer per stream makes that moot.
		if _, err := s.head(ctx, req.Key); err == nil {
			return s.compareExisting(ctx, req)
		} else if !errors.Is(err, pluginapi.ErrNotFound) {
			return Uploaded{}, err
		}
		req.IfAbsent = false
	}
	info, err := s.put(ctx, u, req, caps)
	if errors.Is(err, pluginapi.ErrAlreadyExists) || (req.IfAbsent || req.IfMatch != "") && errors.Is(err, pluginapi.ErrPrecondition) {
		// Taken (AlreadyExists, or FailedPrecondition, which the contract
		// lets a racing if_absent loser answer: IF-ABSENT-RACE), or (a
		// replacement) no longer the damaged object: an earlier attempt
		// whose answer was lost stored these bytes, or they are someone
		// else's.
		return s.compareExisting(ctx, req)
	}
	if err != nil {
		return Uploaded{}, err
	}
	if info.HasCRC64 && info.CRC64 != req.CRC64 || info.Size != req.Size {
		return Uploaded{}, &ChecksumError{Key: req.Key, What: "upload acknowledgement", Want: req.CRC64, Got: info.CRC64,
			Detail: fmt.Sprintf("acknowledged %d bytes crc64 %016x, sent %d bytes crc64 %016x", info.Size, info.CRC64, req.Size, req.CRC64)}
	}
	res := Uploaded{Key: req.Key, ETag: info.ETag, Size: req.Size, CRC64: req.CRC64}
	if s.cfg.SkipUploadVerify {
		return res, nil
	}
	got, err := s.head(ctx, req.Key)
	if errors.Is(err, pluginapi.ErrNotFound) {
		return Uploaded{}, fmt.Errorf("%w: %q", ErrNotStored, req.Key)
	}
	if err != nil {
		return Uploaded{}, err
	}
	if !sameObject(got, req) {
		// Retried: the next attempt's if_absent Put meets the object and
		// compareExisting decides, confirming before it cries data loss.
		return Uploaded{}, fmt.Errorf("%w: %q is %d bytes with crc64 %s after the upload", ErrNotStored, req.Key, got.Size, crcText(got))
	}
	res.ETag = got.ETag
	return res, nil
}

// put sends the bytes: PutFile for a file when the backend has it,
// otherwise a streamed Put (the file reopened for every attempt).
func (s *Store) put(ctx context.Context, u Upload, req pluginapi.PutRequest, caps pluginapi.Capabilities) (info pluginapi.ObjectInfo, err error) {
	if u.Path != "" && caps.PutFile && !s.noFile.Load() {
		err = s.request(ctx, ClassPut, func(ctx context.Context) (err error) {
			info, err = s.b.PutFile(ctx, req, u.Path)
			return err
		})
		if !errors.Is(err, pluginapi.ErrUnimplemented) {
			return info, err
		}
		s.noFile.Store(true)
	}
	var body io.Reader = bytes.NewReader(u.Data)
	if u.Path != "" {
		f, err := os.Open(u.Path)
		if err != nil {
			return info, fmt.Errorf("opening %s: %w", u.Path, err)
		}
		defer func() { _ = f.Close() }()
		body = f
	}
	err = s.request(ctx, ClassPut, func(ctx context.Context) (err error) {
		info, err = s.b.Put(ctx, req, body)
		return err
	})
	return info, err
}

func (s *Store) head(ctx context.Context, key string) (info pluginapi.ObjectInfo, err error) {
	err = s.request(ctx, ClassHead, func(ctx context.Context) (err error) {
		info, err = s.b.Head(ctx, key)
		return err
	})
	return info, err
}

// compareExisting decides an upload whose key is taken: the same size and
// checksum is success; anything else is confirmed by a second Head (a
// backend may misreport once) and then is data loss.
func (s *Store) compareExisting(ctx context.Context, req pluginapi.PutRequest) (Uploaded, error) {
	var got pluginapi.ObjectInfo
	for try := 0; try < 2; try++ {
		var err error
		got, err = s.head(ctx, req.Key)
		if errors.Is(err, pluginapi.ErrNotFound) {
			// Deleted between the Put and the Head: store it again.
			return Uploaded{}, fmt.Errorf("%w: %q vanished after if_absent failed", ErrNotStored, req.Key)
		}
		if err != nil {
			return Uploaded{}, err
		}
		if sameObject(got, req) {
			return Uploaded{Key: req.Key, ETag: got.ETag, Size: req.Size, CRC64: req.CRC64, AlreadyPresent: true}, nil
		}
	}
	crc, has, _ := storedCRC(got)
	return Uploaded{}, &DataLossError{Key: req.Key, LocalCRC64: req.CRC64, LocalSize: req.Size,
		RemoteCRC64: crc, RemoteHasCRC64: has, RemoteSize: got.Size, RemoteETag: got.ETag}
}

func sameObject(got pluginapi.ObjectInfo, req pluginapi.PutRequest) bool {
	crc, ok, problem := storedCRC(got)
	return ok && problem == "" && crc == req.CRC64 && got.Size == req.Size
}

func crcText(info pluginapi.ObjectInfo) string {
	crc, ok, problem := storedCRC(info)
	switch {
	case problem != "":
		return problem
	case !ok:
		return "none"
	}
	return fmt.Sprintf("%016x", crc)
}

// refArgs are the log fields naming the object's stream and segment.
func refArgs(l Layout, key string) []any {
	ref, err := l.Parse(key)
	if err != nil {
		return nil
	}
	args := []any{"stream_id", ref.Stream, "kind", ref.Kind.String()}
	if ref.Kind == KindSegment {
		args = append(args, "segment_id", ref.ID)
	} else {
		args = append(args, "object_id", ref.ID)
	}
	return args
}
