// Package azure is the AOF2 tier-2 backend for Azure Blob Storage, over
// azblob. cmd/aof2-plugin-azure serves it as a plugin.
//
// Objects are block blobs uploaded with UploadStream (UploadBuffer ignores
// BlockSize below 256 MiB): blocks are staged and the block list is
// committed only after the body ended with the declared size and
// CRC-64/NVME; a failure or cancellation before that leaves only
// uncommitted blocks, which are invisible and expire. The CRC-64/NVME is
// stored in the blob's metadata and verified on every whole-object read.
// if_absent is If-None-Match: * (Azurite answers 409 BlobAlreadyExists,
// the service may answer 412 ConditionNotMet: both mean AlreadyExists);
// if_match is If-Match on the blob's ETag.
package azure

import (
	"context"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/internal/cloud"
)

// Version is the backend's version, reported by GetInfo.
const Version = "1.0.0"

// maxMetadataBytes is what user metadata may take before encoding (see
// metadata.go), well inside Azure's 8 KiB.
const maxMetadataBytes = 3072

// ConfigKeys are the settings Configure accepts.
var ConfigKeys = []string{
	"container", "prefix", "connection_string", "account", "account_key", "sas_token", "endpoint",
	"block_size", "concurrency", "max_attempts",
}

// Backend is the azure backend. New returns one ready for Configure.
type Backend struct {
	mu  sync.RWMutex
	cur *state
}

type state struct {
	cc          *container.Client
	prefix      string
	chunk       uint32
	blockSize   int64
	concurrency int
}

var _ pluginapi.Backend = (*Backend)(nil)

// New returns an unconfigured azure backend.
func New() *Backend { return &Backend{} }

func (b *Backend) state() (*state, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.cur == nil {
		return nil, pluginapi.Errorf(pluginapi.CodeUnavailable, "", "azure backend is not configured")
	}
	return b.cur, nil
}

func (b *Backend) Info(context.Context) (pluginapi.Info, error) {
	return pluginapi.Info{
		Name: "azure", Version: Version,
		ContractMajor: pluginapi.ContractMajor, ContractMinor: pluginapi.ContractMinor,
		Capabilities: pluginapi.Capabilities{RangeGet: true, PutFile: true, GetFile: true, IfAbsent: true, IfMatch: true, List: true},
		Limits:       pluginapi.Limits{MaxMetadataBytes: maxMetadataBytes, MaxObjectSize: 190 << 40},
	}, nil
}

// Configure builds the container client from a connection string, or from
// account (+ endpoint) with a shared key, a SAS token, or the default Azure
// credential chain when neither is given.
func (b *Backend) Configure(ctx context.Context, req pluginapi.ConfigureRequest) (pluginapi.ConfigureResult, error) {
	s, err := cloud.ParseSettings(req.Config, ConfigKeys)
	if err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	name, err := s.Required("container")
	if err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	st := &state{}
	if st.prefix, err = s.Prefix(); err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	if st.blockSize, err = s.Size("block_size", 8<<20, 64<<10, 4000<<20); err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	if st.concurrency, err = s.Int("concurrency", 4, 1, 64); err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	attempts, err := s.MaxAttempts()
	if err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	retries := int32(attempts - 1)
	if retries == 0 {
		retries = -1 // azcore reads 0 as "the default" (3)
	}
	opts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: retries}}}
	if st.cc, err = newContainerClient(s, name, opts); err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	info, _ := b.Info(ctx)
	st.chunk = pluginapi.NegotiateChunkSize(req.ChunkSize, info.Limits)
	b.mu.Lock()
	b.cur = st
	b.mu.Unlock()
	return pluginapi.ConfigureResult{ChunkSize: st.chunk}, nil
}

func newContainerClient(s cloud.Settings, name string, opts *container.ClientOptions) (*container.Client, error) {
	invalid := func(format string, args ...any) error {
		return pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", format, args...)
	}
	if cs := s.String("connection_string"); cs != "" {
		for _, k := range []string{"account", "account_key", "sas_token", "endpoint"} {
			if s.String(k) != "" {
				return nil, invalid("setting %q cannot be combined with \"connection_string\"", k)
			}
		}
		cc, err := container.NewClientFromConnectionString(cs, name, opts)
		if err != nil {
			// The SDK's message may quote the string: keep only that it failed.
			return nil, invalid("setting \"connection_string\" is not a valid Azure Storage connection string")
		}
		return cc, nil
	}
	account, err := s.Required("account")
	if err != nil {
		return nil, err
	}
	endpoint := s.String("endpoint")
	if endpoint == "" {
		endpoint = "https://" + account + ".blob.core.windows.net/"
	}
	url := strings.TrimSuffix(endpoint, "/") + "/" + name
	key, sas := s.String("account_key"), s.String("sas_token")
	switch {
	case key != "" && sas != "":
		return nil, invalid("settings \"account_key\" and \"sas_token\" exclude each other")
	case key != "":
		cred, err := service.NewSharedKeyCredential(account, key)
		if err != nil {
			return nil, invalid("setting \"account_key\" is not a valid base64 key")
		}
		return container.NewClientWithSharedKeyCredential(url, cred, opts)
	case sas != "":
		return container.NewClientWithNoCredential(url+"?"+strings.TrimPrefix(sas, "?"), opts)
	default:
		cred, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, invalid("no account_key, sas_token or default Azure credential: %w", err)
		}
		return container.NewClient(url, cred, opts)
	}
}

// Probe reads the container's properties; with a WriteKey it also writes,
// reads back and deletes that key.
func (b *Backend) Probe(ctx context.Context, req pluginapi.ProbeRequest) error {
	st, err := b.state()
	if err != nil {
		return err
	}
	if _, err := st.cc.GetProperties(ctx, nil); err != nil {
		return mapErr("", err, true)
	}
	if req.WriteKey == "" {
		return nil
	}
	return cloud.ProbeWrite(ctx, b, req.WriteKey)
}

// Close releases nothing: the SDK's connections are pooled per process.
func (b *Backend) Close() error { return nil }
