// Package s3 is the AOF2 tier-2 backend for Amazon S3 and S3-compatible
// stores, over aws-sdk-go-v2. cmd/aof2-plugin-s3 serves it as a plugin.
//
// Objects live under an optional prefix in one bucket. Uploads go through
// the SDK's transfer manager: one PutObject below the multipart threshold,
// otherwise a multipart upload with parallel parts that is aborted on any
// failure or cancellation, so a partial object is never visible. The body
// is checked against the Put's size and CRC-64/NVME before the last part
// is sent (or the single PutObject starts), so a wrong body never
// completes. The CRC-64/NVME is stored in the object's metadata and
// verified on every whole-object read; with native_checksum it is also
// sent as S3's own full-object CRC64NVME checksum for the server to check.
//
// if_absent is If-None-Match: *, if_match is If-Match. Provider errors are
// mapped to the contract's sentinels here (see errors.go).
package s3

import (
	"context"
	"encoding/base64"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/internal/cloud"
)

// Version is the backend's version, reported by GetInfo.
const Version = "1.0.0"

// maxMetadataBytes leaves room for the CRC entry in S3's 2 KiB of user metadata.
const maxMetadataBytes = 2048 - cloud.CRCMetadataBytes - 34

// minPartSize is S3's smallest multipart part.
const minPartSize = 5 << 20

// ConfigKeys are the settings Configure accepts.
var ConfigKeys = []string{
	"bucket", "prefix", "region", "endpoint", "path_style",
	"access_key_id", "secret_access_key", "session_token",
	"sse", "sse_kms_key_id", "sse_c_key",
	"native_checksum", "part_size", "multipart_threshold", "concurrency", "max_attempts",
}

// Backend is the s3 backend. New returns one ready for Configure.
type Backend struct {
	mu  sync.RWMutex
	cur *state
}

type state struct {
	client     *s3.Client
	tm         *transfermanager.Client
	bucket     string
	prefix     string
	chunk      uint32
	native     bool
	sse        sseOptions
	partSize   int64
	threshold  int64
	concurrent int
}

// sseOptions are the server-side encryption settings applied to writes
// (and, for SSE-C, to reads).
type sseOptions struct {
	mode     types.ServerSideEncryption
	kmsKeyID string
	// SSE-C: the base64 key and the base64 MD5 of the raw key.
	cKey, cKeyMD5 string
}

var _ pluginapi.Backend = (*Backend)(nil)

// New returns an unconfigured s3 backend.
func New() *Backend { return &Backend{} }

func (b *Backend) state() (*state, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.cur == nil {
		return nil, pluginapi.Errorf(pluginapi.CodeUnavailable, "", "s3 backend is not configured")
	}
	return b.cur, nil
}

func (b *Backend) Info(context.Context) (pluginapi.Info, error) {
	return pluginapi.Info{
		Name: "s3", Version: Version,
		ContractMajor: pluginapi.ContractMajor, ContractMinor: pluginapi.ContractMinor,
		Capabilities: pluginapi.Capabilities{RangeGet: true, PutFile: true, GetFile: true, IfAbsent: true, IfMatch: true, List: true},
		Limits:       pluginapi.Limits{MaxMetadataBytes: uint32(maxMetadataBytes), MaxObjectSize: 5 << 40},
	}, nil
}

// Configure builds the S3 client from the settings; credentials come from
// access_key_id/secret_access_key when set, else the standard AWS chain.
func (b *Backend) Configure(ctx context.Context, req pluginapi.ConfigureRequest) (pluginapi.ConfigureResult, error) {
	s, err := cloud.ParseSettings(req.Config, ConfigKeys)
	if err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	st := &state{}
	if st.bucket, err = s.Required("bucket"); err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	if st.prefix, err = s.Prefix(); err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	pathStyle, err := s.Bool("path_style", false)
	if err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	if st.native, err = s.Bool("native_checksum", false); err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	if st.partSize, err = s.Size("part_size", 8<<20, minPartSize, 5<<30); err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	if st.threshold, err = s.Size("multipart_threshold", st.partSize, minPartSize, 5<<30); err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	if st.concurrent, err = s.Int("concurrency", 4, 1, 64); err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	attempts, err := s.MaxAttempts()
	if err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	if st.sse, err = parseSSE(s); err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	region := s.String("region")
	if region == "" {
		region = "us-east-1"
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(region),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = attempts })
		}),
	}
	if id := s.String("access_key_id"); id != "" {
		secret, err := s.Required("secret_access_key")
		if err != nil {
			return pluginapi.ConfigureResult{}, err
		}
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(id, secret, s.String("session_token"))))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return pluginapi.ConfigureResult{}, pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "loading the AWS configuration: %w", err)
	}
	endpoint := s.String("endpoint")
	st.client = s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = pathStyle
		// Objects are verified against our CRC-64/NVME; the SDK's note that
		// it could not validate a response checksum is noise.
		o.DisableLogOutputChecksumValidationSkipped = true
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	st.tm = transfermanager.New(st.client, func(o *transfermanager.Options) {
		o.PartSizeBytes = st.partSize
		o.MultipartUploadThreshold = st.threshold
		o.Concurrency = st.concurrent
	})
	info, _ := b.Info(ctx)
	st.chunk = pluginapi.NegotiateChunkSize(req.ChunkSize, info.Limits)
	b.mu.Lock()
	b.cur = st
	b.mu.Unlock()
	return pluginapi.ConfigureResult{ChunkSize: st.chunk}, nil
}

func parseSSE(s cloud.Settings) (sseOptions, error) {
	var o sseOptions
	switch v := s.String("sse"); v {
	case "", "none":
	case "AES256", "sse-s3":
		o.mode = types.ServerSideEncryptionAes256
	case "aws:kms", "sse-kms":
		o.mode = types.ServerSideEncryptionAwsKms
		o.kmsKeyID = s.String("sse_kms_key_id")
	case "sse-c":
		key, err := base64.StdEncoding.DecodeString(s.String("sse_c_key"))
		if err != nil || len(key) != 32 {
			return o, pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "setting \"sse_c_key\" must be a base64 256-bit key when sse is sse-c")
		}
		o.cKey, o.cKeyMD5 = s.String("sse_c_key"), md5Base64(key)
	default:
		return o, pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "setting \"sse\" must be one of none, sse-s3, sse-kms, sse-c (got %q)", v)
	}
	if o.mode != types.ServerSideEncryptionAwsKms && s.String("sse_kms_key_id") != "" {
		return o, pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "setting \"sse_kms_key_id\" needs sse=sse-kms")
	}
	if o.cKey == "" && s.String("sse_c_key") != "" {
		return o, pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "setting \"sse_c_key\" needs sse=sse-c")
	}
	return o, nil
}

func (st *state) objectKey(key string) *string { return aws.String(st.prefix + key) }

// Probe checks that the bucket is reachable with the credentials; with a
// WriteKey it also writes, reads back and deletes that key.
func (b *Backend) Probe(ctx context.Context, req pluginapi.ProbeRequest) error {
	st, err := b.state()
	if err != nil {
		return err
	}
	if _, err := st.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(st.bucket)}); err != nil {
		return clarify(mapErr("", err, true), func() error {
			_, err := st.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(st.bucket), MaxKeys: aws.Int32(1)})
			if err != nil {
				return mapErr("", err, true)
			}
			return nil
		})
	}
	if req.WriteKey == "" {
		return nil
	}
	return cloud.ProbeWrite(ctx, b, req.WriteKey)
}

// Close releases nothing: the SDK's HTTP connections are pooled per process.
func (b *Backend) Close() error { return nil }
