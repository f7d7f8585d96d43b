package gcs

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/internal/cloud"
)

// Put uploads body with a resumable upload; see the package comment for
// why a failed or cancelled Put leaves nothing visible.
func (b *Backend) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	return cloud.Put(req, maxMetadataBytes, b.state, body, func(st *state, r io.Reader) (pluginapi.ObjectInfo, error) {
		return st.put(ctx, req, r)
	})
}

// PutFile uploads the local file at path, checked as Put checks a body.
func (b *Backend) PutFile(ctx context.Context, req pluginapi.PutRequest, path string) (pluginapi.ObjectInfo, error) {
	return cloud.PutFile(req, maxMetadataBytes, b.state, path, func(st *state, r io.Reader) (pluginapi.ObjectInfo, error) {
		return st.put(ctx, req, r)
	})
}

func (st *state) put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	obj := st.object(req.Key)
	switch {
	case req.IfAbsent:
		obj = obj.If(storage.Conditions{DoesNotExist: true})
	case req.IfMatch != "":
		gen, ok := parseETag(req.IfMatch)
		if !ok {
			return pluginapi.ObjectInfo{}, pluginapi.Errorf(pluginapi.CodePrecondition, req.Key, "if_match %q: not an etag of this backend", req.IfMatch)
		}
		obj = obj.If(storage.Conditions{GenerationMatch: gen})
	}
	wctx, abort := context.WithCancel(ctx)
	defer abort()
	w := obj.NewWriter(wctx)
	w.ChunkSize = st.chunkSize
	w.Metadata = cloud.WithCRC(req.Metadata, req.CRC64)
	w.ContentType = "application/octet-stream"
	if _, err := io.CopyBuffer(w, body, make([]byte, 1<<20)); err != nil {
		// Abandon the upload: the writer's context ends before Close, so
		// the final request that would create the object is never sent.
		abort()
		_ = w.Close()
		return pluginapi.ObjectInfo{}, st.putErr(req, err)
	}
	if err := w.Close(); err != nil {
		return pluginapi.ObjectInfo{}, st.putErr(req, err)
	}
	a := w.Attrs()
	return pluginapi.ObjectInfo{
		Key: req.Key, Size: uint64(a.Size), ETag: formatETag(a.Generation),
		CRC64: req.CRC64, HasCRC64: true, Metadata: req.Metadata, ModTime: a.Updated,
	}, nil
}

// putErr maps an upload's failure, restating precondition failures in the
// contract's terms (GCS answers 412 to both kinds of condition).
func (st *state) putErr(req pluginapi.PutRequest, err error) error {
	err = mapErr(req.Key, err)
	var e *pluginapi.Error
	if errors.As(err, &e) {
		switch {
		case req.IfAbsent && e.Code == pluginapi.CodePrecondition:
			e.Code, e.Message = pluginapi.CodeAlreadyExists, "if_absent: the object exists"
		case req.IfMatch != "" && (e.Code == pluginapi.CodePrecondition || e.Code == pluginapi.CodeNotFound && e.Reason == ""):
			e.Code, e.Message = pluginapi.CodePrecondition, "if_match "+strconv.Quote(req.IfMatch)+": the object is missing or has another generation"
		}
	}
	return err
}

func formatETag(gen int64) string { return strconv.FormatInt(gen, 10) }

// parseETag takes only what formatETag writes (a generation in canonical
// decimal): "+5" or "05" is no etag of this backend, not generation 5.
func parseETag(s string) (int64, bool) {
	g, err := strconv.ParseInt(s, 10, 64)
	return g, err == nil && g > 0 && formatETag(g) == s
}

func (st *state) info(key string, a *storage.ObjectAttrs) pluginapi.ObjectInfo {
	md, crc, has := cloud.UserMetadata(a.Metadata)
	return pluginapi.ObjectInfo{Key: key, Size: uint64(a.Size), ETag: formatETag(a.Generation), CRC64: crc, HasCRC64: has, Metadata: md, ModTime: a.Updated}
}

// Get reads the object's attributes, then the range of exactly that
// generation, so the description and the bytes always belong together.
func (b *Backend) Get(ctx context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	if err := pluginapi.ValidateKey(req.Key); err != nil {
		return pluginapi.ObjectRange{}, nil, err
	}
	st, err := b.state()
	if err != nil {
		return pluginapi.ObjectRange{}, nil, err
	}
	a, err := st.object(req.Key).Attrs(ctx)
	if err != nil {
		return pluginapi.ObjectRange{}, nil, mapErr(req.Key, err)
	}
	info := st.info(req.Key, a)
	if req.IfMatch != "" && req.IfMatch != info.ETag {
		return pluginapi.ObjectRange{}, nil, &pluginapi.Error{Code: pluginapi.CodePrecondition, Key: req.Key, Message: "if_match: current etag differs", Metadata: map[string]string{"etag": info.ETag}}
	}
	length, err := pluginapi.ResolveRange(info.Size, req.Offset, req.Length)
	if err != nil {
		return pluginapi.ObjectRange{}, nil, err
	}
	rng := pluginapi.ObjectRange{Info: info, Offset: req.Offset, Length: length}
	if length == 0 {
		return rng, io.NopCloser(strings.NewReader("")), nil
	}
	r, err := st.object(req.Key).Generation(a.Generation).NewRangeReader(ctx, int64(req.Offset), int64(length))
	if err != nil {
		err = mapErr(req.Key, err)
		if pluginapi.CodeOf(err) == pluginapi.CodeNotFound {
			// Replaced or deleted between the two requests.
			err = &pluginapi.Error{Code: pluginapi.CodeNotFound, Key: req.Key, Message: "the object changed while it was being opened"}
		}
		return pluginapi.ObjectRange{}, nil, err
	}
	return rng, cloud.VerifiedBody(r, req.Key, rng, func(e error) error { return mapErr(req.Key, e) }), nil
}

// GetFile writes the verified range into the file at path.
func (b *Backend) GetFile(ctx context.Context, req pluginapi.GetRequest, path string) (pluginapi.ObjectRange, error) {
	return cloud.GetFile(ctx, b, req, path)
}

// Head describes an object.
func (b *Backend) Head(ctx context.Context, key string) (pluginapi.ObjectInfo, error) {
	if err := pluginapi.ValidateKey(key); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	st, err := b.state()
	if err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	a, err := st.object(key).Attrs(ctx)
	if err != nil {
		return pluginapi.ObjectInfo{}, mapErr(key, err)
	}
	return st.info(key, a), nil
}

// List pages through the objects under the prefix.
func (b *Backend) List(ctx context.Context, req pluginapi.ListRequest, page func([]pluginapi.ObjectInfo) error) error {
	if err := pluginapi.ValidatePrefix(req.Prefix); err != nil {
		return err
	}
	st, err := b.state()
	if err != nil {
		return err
	}
	size := int(req.PageSize)
	if size <= 0 {
		size = pluginapi.DefaultListPageSize
	}
	q := &storage.Query{Prefix: st.prefix + req.Prefix}
	if req.StartAfter != "" {
		// StartOffset is inclusive; no key contains NUL.
		q.StartOffset = st.prefix + req.StartAfter + "\x00"
	}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Generation", "Updated", "Metadata"}); err != nil {
		return pluginapi.Errorf(pluginapi.CodeUnknown, "", "%w", err)
	}
	it := st.bucket.Objects(ctx, q)
	pager := iterator.NewPager(it, size, "")
	for {
		var attrs []*storage.ObjectAttrs
		next, err := pager.NextPage(&attrs)
		if err != nil {
			return mapErr("", err)
		}
		if len(attrs) > 0 {
			objs := make([]pluginapi.ObjectInfo, 0, len(attrs))
			for _, a := range attrs {
				objs = append(objs, st.info(strings.TrimPrefix(a.Name, st.prefix), a))
			}
			if err := page(objs); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
	}
}

// Delete removes an object; a missing one is success.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := pluginapi.ValidateKey(key); err != nil {
		return err
	}
	st, err := b.state()
	if err != nil {
		return err
	}
	if err := st.object(key).Delete(ctx); err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
		return mapErr(key, err)
	}
	return nil
}
