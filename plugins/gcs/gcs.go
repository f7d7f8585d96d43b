// Package gcs is the AOF2 tier-2 backend for Google Cloud Storage, over
// cloud.google.com/go/storage. cmd/aof2-plugin-gcs serves it as a plugin.
//
// Uploads are resumable with a configurable chunk size: the final chunk is
// sent only by Writer.Close, which runs only after the body ended with the
// declared size and CRC-64/NVME; any failure or cancellation cancels the
// writer's context instead, so the object never appears. The CRC-64/NVME
// is stored in the object's metadata and verified on every whole-object
// read. The contract's etag is the object's generation: if_absent is the
// DoesNotExist precondition (ifGenerationMatch=0), if_match a
// GenerationMatch, and reads are pinned to the generation they described.
package gcs

import (
	"context"
	"strings"
	"sync"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/internal/cloud"
)

// Version is the backend's version, reported by GetInfo.
const Version = "1.0.0"

// maxMetadataBytes is well inside GCS's 8 KiB of custom metadata.
const maxMetadataBytes = 4096

// chunkQuantum is the granularity GCS requires of resumable chunks.
const chunkQuantum = 256 << 10

// ConfigKeys are the settings Configure accepts.
var ConfigKeys = []string{"bucket", "prefix", "endpoint", "credentials_file", "no_auth", "chunk_size", "max_attempts"}

// Backend is the gcs backend. New returns one ready for Configure.
type Backend struct {
	mu      sync.RWMutex
	cur     *state
	retired []*storage.Client
}

type state struct {
	client    *storage.Client
	bucket    *storage.BucketHandle
	prefix    string
	chunk     uint32
	chunkSize int
}

var _ pluginapi.Backend = (*Backend)(nil)

// New returns an unconfigured gcs backend.
func New() *Backend { return &Backend{} }

func (b *Backend) state() (*state, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.cur == nil {
		return nil, pluginapi.Errorf(pluginapi.CodeUnavailable, "", "gcs backend is not configured")
	}
	return b.cur, nil
}

func (b *Backend) Info(context.Context) (pluginapi.Info, error) {
	return pluginapi.Info{
		Name: "gcs", Version: Version,
		ContractMajor: pluginapi.ContractMajor, ContractMinor: pluginapi.ContractMinor,
		Capabilities: pluginapi.Capabilities{RangeGet: true, PutFile: true, GetFile: true, IfAbsent: true, IfMatch: true, List: true},
		Limits:       pluginapi.Limits{MaxMetadataBytes: maxMetadataBytes, MaxObjectSize: 5 << 40},
	}, nil
}

// Configure builds the client: Application Default Credentials unless
// credentials_file names a service-account key, or no_auth is set (for an
// emulator). endpoint overrides the JSON API's base URL.
func (b *Backend) Configure(ctx context.Context, req pluginapi.ConfigureRequest) (pluginapi.ConfigureResult, error) {
	s, err := cloud.ParseSettings(req.Config, ConfigKeys)
	if err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	bucket, err := s.Required("bucket")
	if err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	st := &state{}
	if st.prefix, err = s.Prefix(); err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	noAuth, err := s.Bool("no_auth", false)
	if err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	chunk, err := s.Size("chunk_size", 8<<20, chunkQuantum, 1<<30)
	if err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	if chunk%chunkQuantum != 0 {
		return pluginapi.ConfigureResult{}, pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "setting \"chunk_size\" must be a multiple of 256 KiB")
	}
	st.chunkSize = int(chunk)
	attempts, err := s.MaxAttempts()
	if err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	var opts []option.ClientOption
	if e := s.String("endpoint"); e != "" {
		if !strings.HasSuffix(e, "/storage/v1/") {
			e = strings.TrimSuffix(e, "/") + "/storage/v1/"
		}
		opts = append(opts, option.WithEndpoint(e))
	}
	switch f := s.String("credentials_file"); {
	case noAuth && f != "":
		return pluginapi.ConfigureResult{}, pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "settings \"no_auth\" and \"credentials_file\" exclude each other")
	case noAuth:
		opts = append(opts, option.WithoutAuthentication())
	case f != "":
		opts = append(opts, option.WithAuthCredentialsFile(option.ServiceAccount, f))
	}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return pluginapi.ConfigureResult{}, pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "creating the GCS client: %w", err)
	}
	client.SetRetry(storage.WithMaxAttempts(attempts))
	st.client, st.bucket = client, client.Bucket(bucket)
	info, _ := b.Info(ctx)
	st.chunk = pluginapi.NegotiateChunkSize(req.ChunkSize, info.Limits)
	b.mu.Lock()
	if b.cur != nil {
		b.retired = append(b.retired, b.cur.client)
	}
	b.cur = st
	b.mu.Unlock()
	return pluginapi.ConfigureResult{ChunkSize: st.chunk}, nil
}

// Close closes the clients.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := b.retired
	if b.cur != nil {
		all = append(all, b.cur.client)
	}
	for _, c := range all {
		_ = c.Close()
	}
	b.cur, b.retired = nil, nil
	return nil
}

func (st *state) object(key string) *storage.ObjectHandle { return st.bucket.Object(st.prefix + key) }

// Probe reads the bucket's attributes; with a WriteKey it also writes,
// reads back and deletes that key.
func (b *Backend) Probe(ctx context.Context, req pluginapi.ProbeRequest) error {
	st, err := b.state()
	if err != nil {
		return err
	}
	if _, err := st.bucket.Attrs(ctx); err != nil {
		return mapErr("", err)
	}
	if req.WriteKey == "" {
		return nil
	}
	return cloud.ProbeWrite(ctx, b, req.WriteKey)
}
