package conformance

import (
	"bytes"
	"maps"
	"strings"

	"github.com/aof2/aof2/pluginapi"
)

// Host code is often tested against a backend called in-process (the fake
// in core/tier2 and coordinator tests), where no gRPC server validates in
// front of it. A backend that relies on the server's checks there lets such
// tests pass host code that every real plugin refuses, so the suite calls
// the Backend directly too, when the harness can (InProcess).

func directBehaviours() []behaviour {
	return []behaviour{{"InProcessValidation", testDirectValidation}}
}

func testDirectValidation(t T, s *suite) {
	d := s.tgt.Direct
	if d == nil {
		t.Skipf("the %s harness has no in-process Backend (the plugin side is checked through Raw by InvalidKeys, Metadata and MalformedPutStream)", s.h.Name())
	}
	ctx, cancel := s.ctx(t)
	defer cancel()
	data := []byte("x")
	put := func(req pluginapi.PutRequest, body []byte) error {
		_, err := d.Put(ctx, req, bytes.NewReader(body))
		return err
	}
	absent := func(key, when string) {
		t.Helper()
		_, err := d.Head(ctx, key)
		wantErr(t, RuleDirect, err, pluginapi.ErrNotFound, "direct Head %q %s", key, when)
	}

	limit := int(s.tgt.Info.Limits.MaxMetadataBytes)
	if limit <= 0 {
		limit = pluginapi.DefaultMaxMetadataBytes
	}
	over := map[string]string{"k": strings.Repeat("v", limit)}
	bad := []struct {
		what string
		md   map[string]string
	}{
		{"with a space, an upper-case letter and a slash in a key", map[string]string{"Bad Key/": "v"}},
		{"with an upper-case key", map[string]string{"Stream": "1"}},
		{"with an empty key", map[string]string{"": "1"}},
		{"with a control character in a value", map[string]string{"k": "a\nb"}},
		{"over the advertised limit", over},
	}
	for _, c := range bad {
		key := s.key("direct/bad-metadata")
		err := put(pluginapi.PutRequest{Key: key, Size: 1, CRC64: pluginapi.CRC64(data), Metadata: maps.Clone(c.md)}, data)
		wantErr(t, RuleDirect, err, pluginapi.ErrInvalidArgument, "direct Put with metadata %s", c.what)
		absent(key, "after a direct Put with metadata "+c.what)
	}

	for _, key := range []string{"", "/abs", "a//b", "a/../b", "a/", "a\x00b", "a\\b", strings.Repeat("k", pluginapi.MaxKeyLength+1)} {
		err := put(pluginapi.PutRequest{Key: key, Size: 1, CRC64: pluginapi.CRC64(data)}, data)
		wantErr(t, RuleDirect, err, pluginapi.ErrInvalidKey, "direct Put %q", key)
		_, err = d.Head(ctx, key)
		wantErr(t, RuleDirect, err, pluginapi.ErrInvalidKey, "direct Head %q", key)
		err = d.Delete(ctx, key)
		wantErr(t, RuleDirect, err, pluginapi.ErrInvalidKey, "direct Delete %q", key)
		_, rc, err := d.Get(ctx, pluginapi.GetRequest{Key: key})
		if err == nil {
			_ = rc.Close()
		}
		wantErr(t, RuleDirect, err, pluginapi.ErrInvalidKey, "direct Get %q", key)
	}
	if s.caps().List {
		err := d.List(ctx, pluginapi.ListRequest{Prefix: "../escape/"}, func([]pluginapi.ObjectInfo) error { return nil })
		wantErr(t, RuleDirect, err, pluginapi.ErrInvalidKey, "direct List with prefix %q", "../escape/")
	}

	// A body that breaks the declared size or CRC-64/NVME is refused with
	// nothing stored: the gRPC server's CheckPut is not there to do it.
	key := s.key("direct/bad-checksum")
	err := put(pluginapi.PutRequest{Key: key, Size: 3, CRC64: pluginapi.CRC64([]byte("abc")) ^ 1}, []byte("abc"))
	wantErr(t, RuleDirect, err, pluginapi.ErrChecksum, "direct Put whose bytes do not match the declared CRC-64/NVME")
	absent(key, "after a direct Put with a wrong checksum")
	err = put(pluginapi.PutRequest{Key: key, Size: 4, CRC64: pluginapi.CRC64([]byte("abc"))}, []byte("abc"))
	wantErr(t, RuleDirect, err, pluginapi.ErrChecksum, "direct Put whose body is shorter than the declared size")
	absent(key, "after a direct Put with a short body")
}
