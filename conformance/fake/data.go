package fake

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aof2/aof2/pluginapi"
)

func (b *Backend) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	if err := pluginapi.ValidateKey(req.Key); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	f, hit := b.faults.pick(OpPut, req.Key)
	if hit {
		if err := b.applyCallFault(ctx, f, req.Key); err != nil {
			return pluginapi.ObjectInfo{}, err
		}
		if f.Mode == SlowFirstByte {
			if err := sleepCtx(ctx, f.Delay); err != nil {
				return pluginapi.ObjectInfo{}, err
			}
		}
	}
	if err := b.validatePut(ctx, req); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	if err := b.precheck(req); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(req.Size, 256<<20)))
	src := pluginapi.CheckPut(req, body)
	if hit && f.Mode == Crash {
		if _, err := io.CopyN(buf, src, int64(min(f.AfterBytes, req.Size))); err != nil {
			return pluginapi.ObjectInfo{}, err
		}
		if err := b.crash(req.Key); err != nil {
			return pluginapi.ObjectInfo{}, err
		}
	}
	if _, err := io.Copy(buf, src); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	return b.commit(req, buf.Bytes(), hit, f)
}

// copyCtx copies until EOF, giving up as soon as ctx is done.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	var n int64
	buf := make([]byte, 256<<10)
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, err := src.Read(buf)
		if m > 0 {
			if _, werr := dst.Write(buf[:m]); werr != nil {
				return n, werr
			}
			n += int64(m)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// validatePut applies the contract's Put validation (key, metadata, size,
// preconditions against the advertised capabilities) exactly as the gRPC
// server does, so in-process callers see what a plugin would answer.
func (b *Backend) validatePut(ctx context.Context, req pluginapi.PutRequest) error {
	info, err := b.Info(ctx)
	if err != nil {
		return err
	}
	return pluginapi.ValidatePutRequest(req, info)
}

// precheck fails early on a precondition that already cannot hold; commit
// checks again atomically.
func (b *Backend) precheck(req pluginapi.PutRequest) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return checkPrecondition(req, b.mu.objects[req.Key])
}

func checkPrecondition(req pluginapi.PutRequest, cur *object) error {
	switch {
	case req.IfAbsent && cur != nil:
		return &pluginapi.Error{Code: pluginapi.CodeAlreadyExists, Key: req.Key, Metadata: map[string]string{"etag": cur.info.ETag}}
	case req.IfMatch != "" && cur == nil:
		return pluginapi.Errorf(pluginapi.CodePrecondition, req.Key, "if_match %q: object does not exist", req.IfMatch)
	case req.IfMatch != "" && cur.info.ETag != req.IfMatch:
		return &pluginapi.Error{Code: pluginapi.CodePrecondition, Key: req.Key, Message: fmt.Sprintf("if_match %q: current etag differs", req.IfMatch), Metadata: map[string]string{"etag": cur.info.ETag}}
	}
	return nil
}

func (b *Backend) commit(req pluginapi.PutRequest, data []byte, hit bool, f Fault) (pluginapi.ObjectInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := checkPrecondition(req, b.mu.objects[req.Key]); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	b.mu.gen++
	info := pluginapi.ObjectInfo{
		Key: req.Key, Size: uint64(len(data)), CRC64: req.CRC64, HasCRC64: true,
		ETag:     fmt.Sprintf("%016x-%d", req.CRC64, b.mu.gen),
		Metadata: req.Metadata, ModTime: time.Now(),
	}
	if !(hit && f.Mode == DropPut) {
		// data is the caller's private buffer: keep it without a copy.
		b.mu.objects[req.Key] = &object{data: data, info: cloneInfo(info)}
	}
	if hit && f.Mode == WrongChecksum {
		info.CRC64 ^= 1
	}
	return info, nil
}

func (b *Backend) PutFile(ctx context.Context, req pluginapi.PutRequest, path string) (pluginapi.ObjectInfo, error) {
	if err := pluginapi.ValidateKey(req.Key); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	if !b.caps().PutFile {
		return pluginapi.ObjectInfo{}, unimplemented("put_file")
	}
	if err := b.validatePut(ctx, req); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	f, hit := b.faults.pick(OpPutFile, req.Key)
	if hit {
		if err := b.applyCallFault(ctx, f, req.Key); err != nil {
			return pluginapi.ObjectInfo{}, err
		}
	}
	if err := b.precheck(req); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	file, err := os.Open(path)
	if err != nil {
		return pluginapi.ObjectInfo{}, pluginapi.Errorf(pluginapi.CodeInvalidArgument, req.Key, "PutFile: %w", err)
	}
	defer func() { _ = file.Close() }()
	var buf bytes.Buffer
	if _, err := copyCtx(ctx, &buf, pluginapi.CheckPut(req, file)); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	return b.commit(req, buf.Bytes(), hit, f)
}

// open resolves a Get: the object, the served range and the fault, if any.
func (b *Backend) open(ctx context.Context, op Op, req pluginapi.GetRequest) (*object, pluginapi.ObjectRange, Fault, bool, error) {
	if err := pluginapi.ValidateKey(req.Key); err != nil {
		return nil, pluginapi.ObjectRange{}, Fault{}, false, err
	}
	c := b.caps()
	switch {
	case op == OpGetFile && !c.GetFile:
		return nil, pluginapi.ObjectRange{}, Fault{}, false, unimplemented("get_file")
	case (req.Offset != 0 || req.Length != 0) && !c.RangeGet:
		return nil, pluginapi.ObjectRange{}, Fault{}, false, unimplemented("range_get")
	case req.IfMatch != "" && !c.IfMatch:
		return nil, pluginapi.ObjectRange{}, Fault{}, false, unimplemented("if_match")
	}
	f, hit := b.faults.pick(op, req.Key)
	if hit {
		if err := b.applyCallFault(ctx, f, req.Key); err != nil {
			return nil, pluginapi.ObjectRange{}, f, hit, err
		}
	}
	b.mu.Lock()
	o, ok := b.mu.objects[req.Key]
	b.mu.Unlock()
	if !ok {
		return nil, pluginapi.ObjectRange{}, f, hit, pluginapi.NotFoundError(req.Key)
	}
	if req.IfMatch != "" && req.IfMatch != o.info.ETag {
		return nil, pluginapi.ObjectRange{}, f, hit, &pluginapi.Error{Code: pluginapi.CodePrecondition, Key: req.Key, Message: "if_match: current etag differs", Metadata: map[string]string{"etag": o.info.ETag}}
	}
	length, err := pluginapi.ResolveRange(o.info.Size, req.Offset, req.Length)
	if err != nil {
		return nil, pluginapi.ObjectRange{}, f, hit, err
	}
	rng := pluginapi.ObjectRange{Info: cloneInfo(o.info), Offset: req.Offset, Length: length}
	if hit && f.Mode == WrongChecksum {
		rng.Info.CRC64 ^= 1
	}
	return o, rng, f, hit, nil
}

func (b *Backend) Get(ctx context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	o, rng, f, hit, err := b.open(ctx, OpGet, req)
	if err != nil {
		return rng, nil, err
	}
	data := o.data[rng.Offset : rng.Offset+rng.Length]
	r := &faultyReader{ctx: ctx, data: data, b: b, key: req.Key}
	if hit {
		r.fault, r.active = f, true
	}
	return rng, r, nil
}

func (b *Backend) GetFile(ctx context.Context, req pluginapi.GetRequest, path string) (pluginapi.ObjectRange, error) {
	o, rng, f, hit, err := b.open(ctx, OpGetFile, req)
	if err != nil {
		return rng, err
	}
	data := o.data[rng.Offset : rng.Offset+rng.Length]
	if hit && f.Mode == WrongBytes && len(data) > 0 {
		data = bytes.Clone(data)
		data[len(data)/2] ^= 0x40
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return rng, pluginapi.Errorf(pluginapi.CodeInvalidArgument, req.Key, "GetFile: %w", err)
	}
	return rng, nil
}

// faultyReader serves a Get's bytes, applying the stream faults.
type faultyReader struct {
	ctx    context.Context
	data   []byte
	off    int
	b      *Backend
	key    string
	fault  Fault
	active bool
}

func (r *faultyReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if r.active && r.off == 0 && r.fault.Mode == SlowFirstByte {
		if err := sleepCtx(r.ctx, r.fault.Delay); err != nil {
			return 0, err
		}
	}
	end := len(r.data)
	if r.active && (r.fault.Mode == Truncate || r.fault.Mode == Crash) {
		end = min(end, int(r.fault.AfterBytes))
		if r.off >= end {
			if r.fault.Mode == Truncate {
				return 0, io.EOF
			}
			if err := r.b.crash(r.key); err != nil {
				return 0, err
			}
			r.active = false // the crash was spent: serve the rest
			end = len(r.data)
		}
	}
	if r.off >= end {
		return 0, io.EOF
	}
	n := copy(p, r.data[r.off:end])
	if r.active && r.fault.Mode == WrongBytes && r.off <= len(r.data)/2 && len(r.data)/2 < r.off+n {
		p[len(r.data)/2-r.off] ^= 0x40
	}
	r.off += n
	return n, nil
}

func (r *faultyReader) Close() error { return nil }
