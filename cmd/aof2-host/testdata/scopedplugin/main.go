// Command aof2-plugin-scoped is a test plugin: the in-memory fake backend
// with the permissions of a cloud policy scoped to one key prefix (an IAM
// policy on bucket/prefix/*). The "scope" setting names the prefix; every
// write outside it, the write probe's included, fails with Permission, as
// the cloud backend would answer.
package main

import (
	"context"
	"io"
	"maps"
	"strings"
	"sync/atomic"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
)

type scoped struct {
	*fake.Backend
	scope atomic.Pointer[string]
}

func (s *scoped) Configure(ctx context.Context, req pluginapi.ConfigureRequest) (pluginapi.ConfigureResult, error) {
	scope := req.Config["scope"]
	s.scope.Store(&scope)
	req.Config = maps.Clone(req.Config)
	delete(req.Config, "scope")
	return s.Backend.Configure(ctx, req)
}

func (s *scoped) allow(key string) error {
	scope := ""
	if p := s.scope.Load(); p != nil {
		scope = *p
	}
	if !strings.HasPrefix(key, scope) {
		return pluginapi.Errorf(pluginapi.CodePermission, key, "access denied: the policy allows writes under %q only", scope)
	}
	return nil
}

func (s *scoped) Put(ctx context.Context, req pluginapi.PutRequest, r io.Reader) (pluginapi.ObjectInfo, error) {
	if err := s.allow(req.Key); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	return s.Backend.Put(ctx, req, r)
}

func (s *scoped) PutFile(ctx context.Context, req pluginapi.PutRequest, path string) (pluginapi.ObjectInfo, error) {
	if err := s.allow(req.Key); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	return s.Backend.PutFile(ctx, req, path)
}

func (s *scoped) Probe(ctx context.Context, req pluginapi.ProbeRequest) error {
	if req.WriteKey != "" {
		if err := s.allow(req.WriteKey); err != nil {
			return err
		}
	}
	return s.Backend.Probe(ctx, req)
}

func main() {
	pluginapi.Serve(&scoped{Backend: fake.New(fake.Options{})}, pluginapi.ServeOptions{})
}
