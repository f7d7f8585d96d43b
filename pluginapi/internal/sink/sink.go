// Package sink is a backend that stores nothing: Put verifies and discards
// the bytes, Get serves one fixed object. Benchmarks use it to measure the
// plugin transport without any storage cost.
package sink

import (
	"bytes"
	"context"
	"io"

	"github.com/aof2/aof2/pluginapi"
)

// ObjectSize is the size of the object Get serves under any key.
const ObjectSize = 64 << 20

// Backend is the sink. Only Put, Get, Info, Configure and Probe work.
type Backend struct {
	data []byte
	crc  uint64
}

// New returns a sink serving a 64 MiB object.
func New() *Backend {
	data := bytes.Repeat([]byte("0123456789abcdef"), ObjectSize/16)
	return &Backend{data: data, crc: pluginapi.CRC64(data)}
}

func (s *Backend) Info(context.Context) (pluginapi.Info, error) {
	return pluginapi.Info{Name: "sink", Version: "1", ContractMajor: pluginapi.ContractMajor, Capabilities: pluginapi.Capabilities{RangeGet: true}}, nil
}

func (s *Backend) Configure(_ context.Context, req pluginapi.ConfigureRequest) (pluginapi.ConfigureResult, error) {
	return pluginapi.ConfigureResult{ChunkSize: pluginapi.NegotiateChunkSize(req.ChunkSize, pluginapi.Limits{})}, nil
}

func (s *Backend) Probe(context.Context, pluginapi.ProbeRequest) error { return nil }

func (s *Backend) Put(_ context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	if _, err := io.Copy(io.Discard, pluginapi.CheckPut(req, body)); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	return pluginapi.ObjectInfo{Key: req.Key, Size: req.Size, CRC64: req.CRC64, HasCRC64: true, ETag: "sink"}, nil
}

func (s *Backend) Get(_ context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	n, err := pluginapi.ResolveRange(ObjectSize, req.Offset, req.Length)
	if err != nil {
		return pluginapi.ObjectRange{}, nil, err
	}
	info := pluginapi.ObjectInfo{Key: req.Key, Size: ObjectSize, CRC64: s.crc, HasCRC64: true, ETag: "sink"}
	return pluginapi.ObjectRange{Info: info, Offset: req.Offset, Length: n}, io.NopCloser(bytes.NewReader(s.data[req.Offset : req.Offset+n])), nil
}

func (s *Backend) PutFile(context.Context, pluginapi.PutRequest, string) (pluginapi.ObjectInfo, error) {
	return pluginapi.ObjectInfo{}, pluginapi.ErrUnimplemented
}

func (s *Backend) GetFile(context.Context, pluginapi.GetRequest, string) (pluginapi.ObjectRange, error) {
	return pluginapi.ObjectRange{}, pluginapi.ErrUnimplemented
}

func (s *Backend) Head(context.Context, string) (pluginapi.ObjectInfo, error) {
	return pluginapi.ObjectInfo{}, pluginapi.ErrUnimplemented
}

func (s *Backend) List(context.Context, pluginapi.ListRequest, func([]pluginapi.ObjectInfo) error) error {
	return pluginapi.ErrUnimplemented
}

func (s *Backend) Delete(context.Context, string) error { return pluginapi.ErrUnimplemented }
