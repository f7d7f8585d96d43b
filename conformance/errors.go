package conformance

import (
	"context"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/aof2/aof2/pluginapi"
	pb "github.com/aof2/aof2/pluginapi/proto/aof2/backend/v1"
)

func errorBehaviours() []behaviour {
	return []behaviour{
		{"NotFound", testNotFound},
		{"ErrorDetails", testErrorDetails},
		{"IdempotentDelete", testDelete},
		{"InvalidKeys", testInvalidKeys},
	}
}

// RuleErrorDetails: errors carry the status code and ErrorInfo of the table.
var RuleErrorDetails = Rule{"ERROR-DETAILS", "errors cross the boundary as the error table in docs/plugin-contract.md#errors says: gRPC code plus ErrorInfo(reason, domain aof2.backend.v1, key)"}

func testNotFound(t T, s *suite) {
	ctx, cancel := s.ctx(t)
	defer cancel()
	key := s.key("not-found/never-written")
	_, err := s.b().Head(ctx, key)
	if wantErr(t, RuleNotFound, err, pluginapi.ErrNotFound, "Head of a missing key") {
		check(t, RuleNotFound, strings.Contains(err.Error(), key), "NotFound error: got %q, want a message naming the key %q", err, key)
	}
	_, _, err = s.get(ctx, s.b(), pluginapi.GetRequest{Key: key})
	wantErr(t, RuleNotFound, err, pluginapi.ErrNotFound, "Get of a missing key")
	if s.caps().RangeGet {
		_, _, err = s.get(ctx, s.b(), pluginapi.GetRequest{Key: key, Offset: 5, Length: 5})
		wantErr(t, RuleNotFound, err, pluginapi.ErrNotFound, "ranged Get of a missing key")
	}
	if s.caps().GetFile {
		_, err = s.b().GetFile(ctx, pluginapi.GetRequest{Key: key}, s.tempPath(t, "missing"))
		wantErr(t, RuleNotFound, err, pluginapi.ErrNotFound, "GetFile of a missing key")
	}
}

// testErrorDetails checks the wire form of the errors it can provoke.
func testErrorDetails(t T, s *suite) {
	ctx, cancel := s.ctx(t)
	defer cancel()
	raw := s.b().Raw()
	missing := s.key("error-details/missing")
	_, err := raw.Head(ctx, &pb.HeadRequest{Key: missing})
	checkWire(t, err, codes.NotFound, pluginapi.ReasonObjectNotFound, missing)
	_, err = raw.Head(ctx, &pb.HeadRequest{Key: "../escape"})
	checkWire(t, err, codes.InvalidArgument, pluginapi.ReasonInvalidKey, "")
	if s.caps().IfAbsent {
		key := s.key("error-details/exists")
		s.put(t, ctx, s.b(), key, []byte("x"))
		m := header(key, []byte("y"))
		m.GetHeader().Precondition = &pb.Precondition{IfAbsent: true}
		checkWire(t, rawPutErr(ctx, raw, m, chunk(0, []byte("y"))), codes.AlreadyExists, pluginapi.ReasonObjectExists, key)
	}
	key := s.key("error-details/checksum")
	m := header(key, []byte("abc"))
	m.GetHeader().Crc64Nvme ^= 1
	checkWire(t, rawPutErr(ctx, raw, m, chunk(0, []byte("abc"))), codes.DataLoss, pluginapi.ReasonChecksum, key)
}

func rawPutErr(ctx context.Context, raw pb.BackendClient, msgs ...*pb.PutRequest) error {
	stream, err := raw.Put(ctx)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			break
		}
	}
	_, err = stream.CloseAndRecv()
	return err
}

func checkWire(t T, err error, code codes.Code, reason, key string) {
	t.Helper()
	st, _ := status.FromError(err)
	if !check(t, RuleErrorDetails, st.Code() == code, "got status %s (%v), want %s", st.Code(), err, code) {
		return
	}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	if !check(t, RuleErrorDetails, info != nil, "status %s: got no ErrorInfo detail, want ErrorInfo(reason %q, domain %q)", code, reason, pluginapi.ErrorDomain) {
		return
	}
	check(t, RuleErrorDetails, info.GetReason() == reason && info.GetDomain() == pluginapi.ErrorDomain,
		"got ErrorInfo reason %q domain %q, want %q %q", info.GetReason(), info.GetDomain(), reason, pluginapi.ErrorDomain)
	if key != "" {
		check(t, RuleErrorDetails, info.GetMetadata()["key"] == key, "got ErrorInfo metadata key %q, want %q", info.GetMetadata()["key"], key)
	}
}

func testDelete(t T, s *suite) {
	ctx, cancel := s.ctx(t)
	defer cancel()
	key := s.key("delete/object")
	s.put(t, ctx, s.b(), key, []byte("bye"))
	noErr(t, RuleDelete, s.b().Delete(ctx, key), "Delete of an existing object")
	s.absent(t, ctx, RuleDelete, key, "after Delete")
	noErr(t, RuleDelete, s.b().Delete(ctx, key), "second Delete of the same key")
	noErr(t, RuleDelete, s.b().Delete(ctx, s.key("delete/never-written")), "Delete of a key never written")
	// Deleting one key leaves its neighbours alone.
	a, b := s.key("delete/nested/a"), s.key("delete/nested/b")
	s.put(t, ctx, s.b(), a, []byte("a"))
	s.put(t, ctx, s.b(), b, []byte("b"))
	noErr(t, RuleDelete, s.b().Delete(ctx, a), "Delete a")
	s.mustGetAs(t, ctx, RuleDelete, b, []byte("b"))
	noErr(t, RuleDelete, s.b().Delete(ctx, b), "Delete b")
	// A key that was a "directory" of others can hold an object itself.
	parent := s.key("delete/nested")
	s.put(t, ctx, s.b(), parent, []byte("parent"))
	s.mustGetAs(t, ctx, RuleDelete, parent, []byte("parent"))
}

// InvalidKeys are keys every backend must refuse
// (docs/plugin-contract.md#keys-metadata-chunks-ranges).
var InvalidKeys = []string{
	"", "/abs", "a//b", "a/./b", "a/../b", "..", ".", "a/..", "../a", "a/", "a\x00b",
	"a\nb", "a\\b", strings.Repeat("k", pluginapi.MaxKeyLength+1),
}

func testInvalidKeys(t T, s *suite) {
	ctx, cancel := s.ctx(t)
	defer cancel()
	raw := s.b().Raw()
	for _, key := range InvalidKeys {
		err := rawPut(ctx, raw, header(key, []byte("x")), chunk(0, []byte("x")))
		wantErr(t, RuleInvalidKey, err, pluginapi.ErrInvalidKey, "Put %q", key)
		_, err = raw.Head(ctx, &pb.HeadRequest{Key: key})
		wantErr(t, RuleInvalidKey, pluginapi.FromStatusError(err), pluginapi.ErrInvalidKey, "Head %q", key)
		_, err = raw.Delete(ctx, &pb.DeleteRequest{Key: key})
		wantErr(t, RuleInvalidKey, pluginapi.FromStatusError(err), pluginapi.ErrInvalidKey, "Delete %q", key)
		stream, err := raw.Get(ctx, &pb.GetRequest{Key: key})
		if err == nil {
			_, err = stream.Recv()
		}
		wantErr(t, RuleInvalidKey, pluginapi.FromStatusError(err), pluginapi.ErrInvalidKey, "Get %q", key)
	}
	// Invalid UTF-8 cannot cross the wire (proto3 strings); the host
	// refuses it before sending.
	_, err := s.b().Head(ctx, "bad-\xff-utf8")
	wantErr(t, RuleInvalidKey, err, pluginapi.ErrInvalidKey, "Head of a key that is not UTF-8")
	// The longest valid key works.
	long := s.key(strings.Repeat("k", pluginapi.MaxKeyLength-len(s.prefix)))
	s.put(t, ctx, s.b(), long, []byte("long key"))
	s.mustGetAs(t, ctx, RuleInvalidKey, long, []byte("long key"))
	// Unusual but valid keys round-trip under their exact names.
	for _, name := range []string{"dots/a.b..c", "dots/.hidden", "dots/...", "space/a b", "utf8/żółw-🐢", "pct/%2e%2e/x", "tilde/~"} {
		key := s.key(name)
		s.put(t, ctx, s.b(), key, []byte(name))
		s.mustGetAs(t, ctx, RuleInvalidKey, key, []byte(name))
	}
}
