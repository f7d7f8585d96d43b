package s3

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"

	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/internal/cloud"
)

// Put uploads body through the transfer manager. The body is wrapped so
// that it ends (io.EOF) only after exactly req.Size bytes with the
// declared CRC-64/NVME: any other body fails the read that would end it,
// which fails the PutObject or aborts the multipart upload before
// CompleteMultipartUpload.
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
	in := &transfermanager.UploadObjectInput{
		Bucket:        aws.String(st.bucket),
		Key:           st.objectKey(req.Key),
		Body:          body,
		ContentLength: aws.Int64(int64(req.Size)),
		Metadata:      cloud.WithCRC(req.Metadata, req.CRC64),
	}
	if req.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	if req.IfMatch != "" {
		in.IfMatch = aws.String(req.IfMatch)
	}
	// S3's own full-object CRC64NVME goes with single-request uploads only:
	// the transfer manager (v0.5.7) drops the parts' CRC64NVME values from
	// CompleteMultipartUpload (its CompletedPart has no such field), which
	// servers refuse. Multipart parts keep the manager's per-part CRC32.
	if st.native && int64(req.Size) < st.threshold {
		in.ChecksumAlgorithm = tmtypes.ChecksumAlgorithm("CRC64NVME")
		in.ChecksumType = tmtypes.ChecksumTypeFullObject
		in.ChecksumCRC64NVME = aws.String(nativeCRC(req.CRC64))
	}
	st.sse.applyUpload(in)
	out, err := st.tm.UploadObject(ctx, in, func(o *transfermanager.Options) {
		// A cancelled upload still aborts its multipart upload.
		o.FailTimeout = 30 * time.Second
	})
	if err != nil {
		return pluginapi.ObjectInfo{}, preconditionErr(req, mapErr(req.Key, err, false))
	}
	return pluginapi.ObjectInfo{
		Key: req.Key, Size: req.Size, ETag: aws.ToString(out.ETag),
		CRC64: req.CRC64, HasCRC64: true, Metadata: req.Metadata, ModTime: time.Now(),
	}, nil
}

// nativeCRC is S3's form of a CRC64NVME checksum: base64 of the big-endian value.
func nativeCRC(crc uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], crc)
	return base64.StdEncoding.EncodeToString(b[:])
}

func md5Base64(b []byte) string {
	sum := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func (o sseOptions) applyUpload(in *transfermanager.UploadObjectInput) {
	if o.mode != "" {
		in.ServerSideEncryption = tmtypes.ServerSideEncryption(o.mode)
	}
	if o.kmsKeyID != "" {
		in.SSEKMSKeyID = aws.String(o.kmsKeyID)
	}
	if o.cKey != "" {
		in.SSECustomerAlgorithm = aws.String("AES256")
		in.SSECustomerKey = aws.String(o.cKey)
		in.SSECustomerKeyMD5 = aws.String(o.cKeyMD5)
	}
}

// preconditionErr restates S3's answers to a conditional write in the
// contract's terms: If-None-Match: * over an existing object is 412 (or 409
// when a concurrent conditional write won), If-Match on a missing object 404.
func preconditionErr(req pluginapi.PutRequest, err error) error {
	var e *pluginapi.Error
	if !errors.As(err, &e) {
		return err
	}
	switch {
	case req.IfAbsent && (e.Code == pluginapi.CodePrecondition || e.Code == pluginapi.CodeAlreadyExists):
		e.Code, e.Reason = pluginapi.CodeAlreadyExists, ""
		e.Message = "if_absent: the object exists"
	case req.IfMatch != "" && e.Code == pluginapi.CodeNotFound && e.Reason != pluginapi.ReasonBucketNotFound:
		e.Code = pluginapi.CodePrecondition
		e.Message = fmt.Sprintf("if_match %q: object does not exist", req.IfMatch)
	case req.IfMatch != "" && e.Code == pluginapi.CodePrecondition:
		e.Message = fmt.Sprintf("if_match %q: current etag differs", req.IfMatch)
	}
	return e
}
