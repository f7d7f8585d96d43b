package conformance_test

import (
	"context"
	"io"
	"os"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
)

// quotedListETag lists etags in quotes while Head returns them bare (S3's
// ListObjectsV2 and HeadObject disagree so unless a backend trims both):
// a restore that downloads what it listed, pinned to the listed etag,
// fails.
type quotedListETag struct{ *fake.Backend }

func (b quotedListETag) List(ctx context.Context, req pluginapi.ListRequest, page func([]pluginapi.ObjectInfo) error) error {
	return b.Backend.List(ctx, req, func(p []pluginapi.ObjectInfo) error {
		for i := range p {
			p[i].ETag = `"` + p[i].ETag + `"`
		}
		return page(p)
	})
}

// prefixPutFile uploads the first req.Size bytes of the file and never
// notices that the file goes on: a staging file longer than declared is
// stored cut short, and acknowledged.
type prefixPutFile struct{ *fake.Backend }

func (b prefixPutFile) PutFile(ctx context.Context, req pluginapi.PutRequest, path string) (pluginapi.ObjectInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return pluginapi.ObjectInfo{}, pluginapi.Errorf(pluginapi.CodeInvalidArgument, req.Key, "PutFile: %w", err)
	}
	defer func() { _ = f.Close() }()
	return b.Backend.Put(ctx, req, io.LimitReader(f, int64(req.Size)))
}

// rangeIgnoresIfMatch checks if_match only on whole-object reads (a range
// request built without the condition): a cold point read pinned to the
// etag seen at open reads a replaced object's bytes.
type rangeIgnoresIfMatch struct{ *fake.Backend }

func (b rangeIgnoresIfMatch) Get(ctx context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	if req.Offset != 0 || req.Length != 0 {
		req.IfMatch = ""
	}
	return b.Backend.Get(ctx, req)
}

// getFileIgnoresIfMatch downloads into a file without the condition: the
// host's download pinned to the etag its manifest records gets whatever
// the key holds now.
type getFileIgnoresIfMatch struct{ *fake.Backend }

func (b getFileIgnoresIfMatch) GetFile(ctx context.Context, req pluginapi.GetRequest, path string) (pluginapi.ObjectRange, error) {
	req.IfMatch = ""
	return b.Backend.GetFile(ctx, req, path)
}
