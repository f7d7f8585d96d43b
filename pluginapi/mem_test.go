package pluginapi

import (
	"bytes"
	"context"
	"io"
	"sync"
)

// mem is a minimal in-memory Backend for this package's own tests
// (the full fake lives in conformance/fake, which imports this package).
type mem struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func memBackend() *mem { return &mem{objs: map[string][]byte{}} }

func (m *mem) Info(context.Context) (Info, error) {
	return Info{Name: "mem", Capabilities: Capabilities{RangeGet: true}}, nil
}
func (m *mem) Configure(context.Context, ConfigureRequest) (ConfigureResult, error) {
	return ConfigureResult{}, nil
}
func (m *mem) Probe(context.Context, ProbeRequest) error { return nil }
func (m *mem) Put(_ context.Context, req PutRequest, body io.Reader) (ObjectInfo, error) {
	data, err := io.ReadAll(CheckPut(req, body))
	if err != nil {
		return ObjectInfo{}, err
	}
	m.mu.Lock()
	m.objs[req.Key] = data
	m.mu.Unlock()
	return ObjectInfo{Key: req.Key, Size: req.Size, CRC64: req.CRC64, HasCRC64: true, ETag: "e"}, nil
}
func (m *mem) PutFile(context.Context, PutRequest, string) (ObjectInfo, error) {
	return ObjectInfo{}, ErrUnimplemented
}
func (m *mem) Get(_ context.Context, req GetRequest) (ObjectRange, io.ReadCloser, error) {
	m.mu.Lock()
	data, ok := m.objs[req.Key]
	m.mu.Unlock()
	if !ok {
		return ObjectRange{}, nil, NotFoundError(req.Key)
	}
	n, err := ResolveRange(uint64(len(data)), req.Offset, req.Length)
	if err != nil {
		return ObjectRange{}, nil, err
	}
	info := ObjectInfo{Key: req.Key, Size: uint64(len(data)), CRC64: CRC64(data), HasCRC64: true, ETag: "e"}
	return ObjectRange{Info: info, Offset: req.Offset, Length: n}, io.NopCloser(bytes.NewReader(data[req.Offset : req.Offset+n])), nil
}
func (m *mem) GetFile(context.Context, GetRequest, string) (ObjectRange, error) {
	return ObjectRange{}, ErrUnimplemented
}
func (m *mem) Head(context.Context, string) (ObjectInfo, error) {
	return ObjectInfo{}, ErrUnimplemented
}
func (m *mem) List(context.Context, ListRequest, func([]ObjectInfo) error) error {
	return ErrUnimplemented
}
func (m *mem) Delete(context.Context, string) error { return nil }
