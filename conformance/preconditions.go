package conformance

import (
	"bytes"
	"os"

	"github.com/aof2/aof2/pluginapi"
)

func preconditionBehaviours() []behaviour {
	return []behaviour{
		{"IfAbsent", testIfAbsent},
		{"IfMatch", testIfMatch},
	}
}

func testIfAbsent(t T, s *suite) {
	if !s.caps().IfAbsent {
		t.Skipf("if_absent not advertised (Unimplemented checked by UnadvertisedFeatures)")
	}
	ctx, cancel := s.ctx(t)
	defer cancel()
	key := s.key("if-absent/object")
	first := s.putReq(t, ctx, s.b(), pluginapi.PutRequest{Key: key, IfAbsent: true}, []byte("first"))
	second := []byte("second")
	_, err := s.b().Put(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(second)), CRC64: pluginapi.CRC64(second), IfAbsent: true}, bytes.NewReader(second))
	wantErr(t, RuleIfAbsent, err, pluginapi.ErrAlreadyExists, "Put if_absent over an existing object")
	rng := s.mustGetAs(t, ctx, RuleIfAbsent, key, []byte("first"))
	check(t, RuleIfAbsent, rng.Info.ETag == first.ETag, "etag after a refused if_absent Put: got %q, want %q unchanged", rng.Info.ETag, first.ETag)
	// After a delete, the key is absent again.
	noErr(t, RuleIfAbsent, s.b().Delete(ctx, key), "Delete")
	s.putReq(t, ctx, s.b(), pluginapi.PutRequest{Key: key, IfAbsent: true}, []byte("third"))
	s.mustGetAs(t, ctx, RuleIfAbsent, key, []byte("third"))
}

func testIfMatch(t T, s *suite) {
	if !s.caps().IfMatch {
		t.Skipf("if_match not advertised (Unimplemented checked by UnadvertisedFeatures)")
	}
	ctx, cancel := s.ctx(t)
	defer cancel()
	key := s.key("if-match/object")
	v1 := s.put(t, ctx, s.b(), key, []byte("v1"))
	v2 := s.putReq(t, ctx, s.b(), pluginapi.PutRequest{Key: key, IfMatch: v1.ETag}, []byte("v2"))
	check(t, RuleIfMatch, v2.ETag != v1.ETag, "etag after a conditional overwrite: got %q, want one different from %q", v2.ETag, v1.ETag)

	stale := []byte("v3 from a stale writer")
	_, err := s.b().Put(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(stale)), CRC64: pluginapi.CRC64(stale), IfMatch: v1.ETag}, bytes.NewReader(stale))
	wantErr(t, RuleIfMatch, err, pluginapi.ErrPrecondition, "Put if_match with a stale etag")
	s.mustGetAs(t, ctx, RuleIfMatch, key, []byte("v2"))

	missing := s.key("if-match/missing")
	_, err = s.b().Put(ctx, pluginapi.PutRequest{Key: missing, Size: 1, CRC64: pluginapi.CRC64([]byte("x")), IfMatch: v1.ETag}, bytes.NewReader([]byte("x")))
	wantErr(t, RuleIfMatch, err, pluginapi.ErrPrecondition, "Put if_match on a missing object")
	s.absent(t, ctx, RuleIfMatch, missing, "after a refused if_match Put")

	{
		_, _, err = s.get(ctx, s.b(), pluginapi.GetRequest{Key: key, IfMatch: v1.ETag})
		wantErr(t, RuleIfMatch, err, pluginapi.ErrPrecondition, "Get if_match with a stale etag")
		_, got, err := s.get(ctx, s.b(), pluginapi.GetRequest{Key: key, IfMatch: v2.ETag})
		noErr(t, RuleIfMatch, err, "Get if_match with the current etag")
		check(t, RuleIfMatch, string(got) == "v2", "Get if_match: got %q, want %q", got, "v2")
	}
	if s.caps().RangeGet {
		// Cold point reads are ranges pinned to the etag seen at open.
		_, _, err = s.get(ctx, s.b(), pluginapi.GetRequest{Key: key, Offset: 1, Length: 1, IfMatch: v1.ETag})
		wantErr(t, RuleIfMatch, err, pluginapi.ErrPrecondition, "ranged Get if_match with a stale etag")
		_, got, err := s.get(ctx, s.b(), pluginapi.GetRequest{Key: key, Offset: 1, Length: 1, IfMatch: v2.ETag})
		noErr(t, RuleIfMatch, err, "ranged Get if_match with the current etag")
		check(t, RuleIfMatch, string(got) == "2", "ranged Get if_match: got %q, want %q", got, "2")
	}
	if s.caps().GetFile {
		// Downloads into the warm cache are pinned to the recorded etag.
		dst := s.tempPath(t, "if-match")
		_, err = s.b().GetFile(ctx, pluginapi.GetRequest{Key: key, IfMatch: v1.ETag}, dst)
		wantErr(t, RuleIfMatch, err, pluginapi.ErrPrecondition, "GetFile if_match with a stale etag")
		_, err = s.b().GetFile(ctx, pluginapi.GetRequest{Key: key, IfMatch: v2.ETag}, dst)
		noErr(t, RuleIfMatch, err, "GetFile if_match with the current etag")
		got, err := os.ReadFile(dst)
		noErr(t, RuleIfMatch, err, "reading the GetFile output")
		check(t, RuleIfMatch, string(got) == "v2", "GetFile if_match: got %q, want %q", got, "v2")
	}
}
