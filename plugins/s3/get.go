package s3

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/internal/cloud"
)

// Get opens a range with one GetObject (a Range header unless the whole
// object is asked for). The body is verified: its length always, and the
// CRC-64/NVME from the metadata when the whole object is read.
func (b *Backend) Get(ctx context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	if err := pluginapi.ValidateKey(req.Key); err != nil {
		return pluginapi.ObjectRange{}, nil, err
	}
	st, err := b.state()
	if err != nil {
		return pluginapi.ObjectRange{}, nil, err
	}
	in := &s3.GetObjectInput{Bucket: aws.String(st.bucket), Key: st.objectKey(req.Key)}
	if req.IfMatch != "" {
		in.IfMatch = aws.String(req.IfMatch)
	}
	if r := rangeHeader(req.Offset, req.Length); r != "" {
		in.Range = aws.String(r)
	}
	st.sse.applyGet(in)
	out, err := st.client.GetObject(ctx, in)
	if err != nil {
		err = mapErr(req.Key, err, false)
		if pluginapi.CodeOf(err) == pluginapi.CodeOutOfRange {
			return st.emptyOrOutOfRange(ctx, req)
		}
		return pluginapi.ObjectRange{}, nil, err
	}
	md, crc, has := cloud.UserMetadata(out.Metadata)
	n := uint64(aws.ToInt64(out.ContentLength))
	size := n
	if cr := aws.ToString(out.ContentRange); cr != "" {
		if size, err = totalFromContentRange(cr); err != nil {
			_ = out.Body.Close()
			return pluginapi.ObjectRange{}, nil, pluginapi.Errorf(pluginapi.CodeUnavailable, req.Key, "%w", err)
		}
	}
	info := pluginapi.ObjectInfo{Key: req.Key, Size: size, ETag: aws.ToString(out.ETag), CRC64: crc, HasCRC64: has, Metadata: md, ModTime: aws.ToTime(out.LastModified)}
	length, err := pluginapi.ResolveRange(size, req.Offset, req.Length)
	if err != nil {
		_ = out.Body.Close()
		return pluginapi.ObjectRange{}, nil, err
	}
	rng := pluginapi.ObjectRange{Info: info, Offset: req.Offset, Length: length}
	return rng, cloud.VerifiedBody(out.Body, req.Key, rng, func(e error) error { return mapErr(req.Key, e, false) }), nil
}

// emptyOrOutOfRange handles S3's 416: a range of an empty object (which
// the contract serves as empty) or an offset past the end.
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

// totalFromContentRange reads the size from "bytes a-b/size".
func totalFromContentRange(cr string) (uint64, error) {
	i := strings.LastIndexByte(cr, '/')
	if i < 0 {
		return 0, fmt.Errorf("malformed Content-Range %q", cr)
	}
	n, err := strconv.ParseUint(cr[i+1:], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed Content-Range %q", cr)
	}
	return n, nil
}

// GetFile writes the verified range into the file at path.
func (b *Backend) GetFile(ctx context.Context, req pluginapi.GetRequest, path string) (pluginapi.ObjectRange, error) {
	return cloud.GetFile(ctx, b, req, path)
}

// Head describes an object with HeadObject.
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
	in := &s3.HeadObjectInput{Bucket: aws.String(st.bucket), Key: st.objectKey(key)}
	if st.sse.cKey != "" {
		in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = aws.String("AES256"), aws.String(st.sse.cKey), aws.String(st.sse.cKeyMD5)
	}
	out, err := st.client.HeadObject(ctx, in)
	if err != nil {
		return pluginapi.ObjectInfo{}, clarify(mapErr(key, err, false), func() error {
			get := &s3.GetObjectInput{Bucket: in.Bucket, Key: in.Key, Range: aws.String("bytes=0-0")}
			st.sse.applyGet(get)
			o, err := st.client.GetObject(ctx, get)
			if err != nil {
				return mapErr(key, err, false)
			}
			_ = o.Body.Close()
			return nil
		})
	}
	md, crc, has := cloud.UserMetadata(out.Metadata)
	return pluginapi.ObjectInfo{
		Key: key, Size: uint64(aws.ToInt64(out.ContentLength)), ETag: aws.ToString(out.ETag),
		CRC64: crc, HasCRC64: has, Metadata: md, ModTime: aws.ToTime(out.LastModified),
	}, nil
}

// List pages through ListObjectsV2 under the prefix.
func (b *Backend) List(ctx context.Context, req pluginapi.ListRequest, page func([]pluginapi.ObjectInfo) error) error {
	if err := pluginapi.ValidatePrefix(req.Prefix); err != nil {
		return err
	}
	st, err := b.state()
	if err != nil {
		return err
	}
	size := int32(req.PageSize)
	if size <= 0 || size > 1000 {
		size = pluginapi.DefaultListPageSize
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(st.bucket), Prefix: aws.String(st.prefix + req.Prefix), MaxKeys: aws.Int32(size)}
	if req.StartAfter != "" {
		in.StartAfter = aws.String(st.prefix + req.StartAfter)
	}
	p := s3.NewListObjectsV2Paginator(st.client, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return mapErr("", err, false)
		}
		objs := make([]pluginapi.ObjectInfo, 0, len(out.Contents))
		for _, o := range out.Contents {
			objs = append(objs, pluginapi.ObjectInfo{
				Key: strings.TrimPrefix(aws.ToString(o.Key), st.prefix), Size: uint64(aws.ToInt64(o.Size)),
				ETag: aws.ToString(o.ETag), ModTime: aws.ToTime(o.LastModified),
			})
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

// Delete removes an object; S3 answers success for a missing key.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := pluginapi.ValidateKey(key); err != nil {
		return err
	}
	st, err := b.state()
	if err != nil {
		return err
	}
	_, err = st.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(st.bucket), Key: st.objectKey(key)})
	if err != nil {
		if err = mapErr(key, err, false); pluginapi.CodeOf(err) == pluginapi.CodeNotFound && !isBucketMissing(err) {
			return nil
		}
		return err
	}
	return nil
}

func (o sseOptions) applyGet(in *s3.GetObjectInput) {
	if o.cKey != "" {
		in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = aws.String("AES256"), aws.String(o.cKey), aws.String(o.cKeyMD5)
	}
}

// rangeHeader is the HTTP Range of a Get of length bytes at offset ("" for
// the whole object; length 0, or one reaching past the largest offset, is
// to the end, as pluginapi.ResolveRange reads it). offset+length-1 is not
// computed when it would wrap: "bytes=10-4" is no range, and a server
// ignores it and sends the whole object.
func rangeHeader(offset, length uint64) string {
	if offset == 0 && length == 0 {
		return ""
	}
	r := fmt.Sprintf("bytes=%d-", offset)
	if length > 0 && length <= math.MaxUint64-offset {
		r += strconv.FormatUint(offset+length-1, 10)
	}
	return r
}
