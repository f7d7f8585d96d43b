package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/internal/cloud"
)

// Put uploads body with UploadStream; see the package comment for why a
// failed or cancelled Put leaves nothing visible.
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

func (st *state) blob(key string) *blockblob.Client {
	return st.cc.NewBlockBlobClient(st.prefix + key)
}

func (st *state) put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	opts := &blockblob.UploadStreamOptions{
		BlockSize:   st.blockSize,
		Concurrency: st.concurrency,
		Metadata:    toAzure(req.Metadata, req.CRC64),
	}
	switch {
	case req.IfAbsent:
		opts.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to.Ptr(azcore.ETagAny)}}
	case req.IfMatch != "":
		opts.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: to.Ptr(azcore.ETag(req.IfMatch))}}
	}
	resp, err := st.blob(req.Key).UploadStream(ctx, body, opts)
	if err != nil {
		return pluginapi.ObjectInfo{}, putErr(req, mapErr(req.Key, err, false))
	}
	return pluginapi.ObjectInfo{
		Key: req.Key, Size: req.Size, ETag: etagOf(resp.ETag),
		CRC64: req.CRC64, HasCRC64: true, Metadata: req.Metadata, ModTime: deref(resp.LastModified),
	}, nil
}

// putErr restates the answers to a conditional write in the contract's
// terms: If-None-Match: * over an existing blob is 409 BlobAlreadyExists
// (Azurite) or 412 ConditionNotMet (the service); If-Match on a missing
// blob is 404 or 412.
func putErr(req pluginapi.PutRequest, err error) error {
	var e *pluginapi.Error
	if !errors.As(err, &e) {
		return err
	}
	switch {
	case req.IfAbsent && (e.Code == pluginapi.CodePrecondition || e.Code == pluginapi.CodeAlreadyExists):
		e.Code, e.Message = pluginapi.CodeAlreadyExists, "if_absent: the object exists"
	case req.IfMatch != "" && (e.Code == pluginapi.CodePrecondition || e.Code == pluginapi.CodeNotFound && e.Reason == ""):
		e.Code, e.Message = pluginapi.CodePrecondition, fmt.Sprintf("if_match %q: the object is missing or has another etag", req.IfMatch)
	}
	return e
}

// Get downloads a range with one request (no Range header for a whole
// object) and verifies the body.
func (b *Backend) Get(ctx context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	if err := pluginapi.ValidateKey(req.Key); err != nil {
		return pluginapi.ObjectRange{}, nil, err
	}
	st, err := b.state()
	if err != nil {
		return pluginapi.ObjectRange{}, nil, err
	}
	opts := &blob.DownloadStreamOptions{}
	if req.IfMatch != "" {
		opts.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: to.Ptr(azcore.ETag(req.IfMatch))}}
	}
	if req.Offset > 0 || req.Length > 0 {
		opts.Range = blob.HTTPRange{Offset: int64(req.Offset), Count: int64(req.Length)}
	}
	resp, err := st.blob(req.Key).DownloadStream(ctx, opts)
	if err != nil {
		err = mapErr(req.Key, err, false)
		if pluginapi.CodeOf(err) == pluginapi.CodeOutOfRange {
			return st.emptyOrOutOfRange(ctx, req)
		}
		return pluginapi.ObjectRange{}, nil, err
	}
	md, crc, has := fromAzure(resp.Metadata)
	size := uint64(deref(resp.ContentLength))
	if cr := deref(resp.ContentRange); cr != "" {
		i := strings.LastIndexByte(cr, '/')
		if _, err := fmt.Sscan(cr[i+1:], &size); i < 0 || err != nil {
			_ = resp.Body.Close()
			return pluginapi.ObjectRange{}, nil, pluginapi.Errorf(pluginapi.CodeUnavailable, req.Key, "malformed Content-Range %q", cr)
		}
	}
	info := pluginapi.ObjectInfo{Key: req.Key, Size: size, ETag: etagOf(resp.ETag), CRC64: crc, HasCRC64: has, Metadata: md, ModTime: deref(resp.LastModified)}
	length, err := pluginapi.ResolveRange(size, req.Offset, req.Length)
	if err != nil {
		_ = resp.Body.Close()
		return pluginapi.ObjectRange{}, nil, err
	}
	rng := pluginapi.ObjectRange{Info: info, Offset: req.Offset, Length: length}
	return rng, cloud.VerifiedBody(resp.Body, req.Key, rng, func(e error) error { return mapErr(req.Key, e, false) }), nil
}

// emptyOrOutOfRange handles a 416: a range of an empty blob (served as
// empty) or an offset past the end.
func (st *state) emptyOrOutOfRange(ctx context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	info, err := st.head(ctx, req.Key)
	if err != nil {
		return pluginapi.ObjectRange{}, nil, err
	}
	if req.IfMatch != "" && info.ETag != req.IfMatch {
		return pluginapi.ObjectRange{}, nil, &pluginapi.Error{Code: pluginapi.CodePrecondition, Key: req.Key, Message: "if_match: current etag differs"}
	}
	length, err := pluginapi.ResolveRange(info.Size, req.Offset, req.Length)
	if err != nil {
		return pluginapi.ObjectRange{}, nil, err
	}
	if length != 0 {
		return pluginapi.ObjectRange{}, nil, pluginapi.Errorf(pluginapi.CodeUnavailable, req.Key, "the server refused range %d+%d of a %d-byte object", req.Offset, req.Length, info.Size)
	}
	return pluginapi.ObjectRange{Info: info, Offset: req.Offset}, io.NopCloser(strings.NewReader("")), nil
}

// GetFile writes the verified range into the file at path.
func (b *Backend) GetFile(ctx context.Context, req pluginapi.GetRequest, path string) (pluginapi.ObjectRange, error) {
	return cloud.GetFile(ctx, b, req, path)
}

// Head describes a blob.
func (b *Backend) Head(ctx context.Context, key string) (pluginapi.ObjectInfo, error) {
	if err := pluginapi.ValidateKey(key); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	st, err := b.state()
	if err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	return st.head(ctx, key)
}

func (st *state) head(ctx context.Context, key string) (pluginapi.ObjectInfo, error) {
	p, err := st.blob(key).GetProperties(ctx, nil)
	if err != nil {
		return pluginapi.ObjectInfo{}, mapErr(key, err, false)
	}
	md, crc, has := fromAzure(p.Metadata)
	return pluginapi.ObjectInfo{
		Key: key, Size: uint64(deref(p.ContentLength)), ETag: etagOf(p.ETag),
		CRC64: crc, HasCRC64: has, Metadata: md, ModTime: deref(p.LastModified),
	}, nil
}

// List pages through the blobs under the prefix. Blob listings have no
// portable start-after, so keys up to StartAfter are skipped here.
func (b *Backend) List(ctx context.Context, req pluginapi.ListRequest, page func([]pluginapi.ObjectInfo) error) error {
	if err := pluginapi.ValidatePrefix(req.Prefix); err != nil {
		return err
	}
	st, err := b.state()
	if err != nil {
		return err
	}
	size := int32(req.PageSize)
	if size <= 0 || size > 5000 {
		size = pluginapi.DefaultListPageSize
	}
	pager := st.cc.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
		Prefix: to.Ptr(st.prefix + req.Prefix), MaxResults: to.Ptr(size),
		Include: container.ListBlobsInclude{Metadata: true},
	})
	for pager.More() {
		resp, err := pager.NextPage(ctx)
		if err != nil {
			return mapErr("", err, true)
		}
		var objs []pluginapi.ObjectInfo
		for _, item := range resp.Segment.BlobItems {
			key := strings.TrimPrefix(deref(item.Name), st.prefix)
			if req.StartAfter != "" && key <= req.StartAfter {
				continue
			}
			info := pluginapi.ObjectInfo{Key: key}
			if p := item.Properties; p != nil {
				info.Size, info.ETag, info.ModTime = uint64(deref(p.ContentLength)), etagOf(p.ETag), deref(p.LastModified)
			}
			info.Metadata, info.CRC64, info.HasCRC64 = fromAzure(item.Metadata)
			objs = append(objs, info)
		}
		if len(objs) == 0 {
			continue
		}
		if err := page(objs); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes a blob (and its snapshots); a missing one is success.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := pluginapi.ValidateKey(key); err != nil {
		return err
	}
	st, err := b.state()
	if err != nil {
		return err
	}
	_, err = st.blob(key).Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: to.Ptr(blob.DeleteSnapshotsOptionTypeInclude)})
	if err != nil {
		if err = mapErr(key, err, false); pluginapi.CodeOf(err) == pluginapi.CodeNotFound && !isContainerMissing(err) {
			return nil
		}
		return err
	}
	return nil
}

func isContainerMissing(err error) bool {
	var e *pluginapi.Error
	return errors.As(err, &e) && e.Reason == pluginapi.ReasonBucketNotFound
}

// deref is *p, or the zero value for nil.
// etagOf is a blob's etag in the one form the plugin reports everywhere,
// quoted: Azure's response headers quote it, its listings do not, and the
// host downloads what it listed pinned to the listed etag.
func etagOf(e *azcore.ETag) string {
	v := string(deref(e))
	if v == "" || strings.HasPrefix(v, `"`) {
		return v
	}
	return `"` + v + `"`
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
