package conformance

import (
	"bytes"
	"os"
	"path/filepath"

	"github.com/aof2/aof2/pluginapi"
)

func fileBehaviours() []behaviour {
	return []behaviour{
		{"PutFileGetFile", testFiles},
		{"FileErrors", testFileErrors},
	}
}

func testFiles(t T, s *suite) {
	if !s.caps().PutFile || !s.caps().GetFile {
		t.Skipf("put_file/get_file not advertised (Unimplemented checked by UnadvertisedFeatures)")
	}
	ctx, cancel := s.ctx(t)
	defer cancel()
	c := int(s.tgt.ChunkSize)
	for _, n := range []int{0, 1, c + 1, 8<<20 + 3} {
		data := pattern(uint64(n)+31, n)
		key := s.key("files/object")
		src := s.tempFile(t, data)
		info, err := s.b().PutFile(ctx, pluginapi.PutRequest{Key: key, Size: uint64(n), CRC64: pluginapi.CRC64(data)}, src)
		noErr(t, RuleFiles, err, "PutFile of %d bytes", n)
		checkAck(t, info, key, uint64(n), pluginapi.CRC64(data))
		s.mustGetAs(t, ctx, RuleFiles, key, data) // PutFile then Get
		dst := s.tempPath(t, "whole")
		rng, err := s.b().GetFile(ctx, pluginapi.GetRequest{Key: key}, dst)
		noErr(t, RuleFiles, err, "GetFile of %d bytes", n)
		got, err := os.ReadFile(dst)
		noErr(t, RuleFiles, err, "reading the GetFile output")
		check(t, RuleFiles, bytes.Equal(got, data) && rng.Length == uint64(n), "GetFile: got %d bytes (header length %d) differing from the stored ones (first difference at %d), want the %d bytes stored", len(got), rng.Length, firstDiff(got, data), n)
		if n > 2 && s.caps().RangeGet {
			// A range into an existing, longer file replaces it.
			rng, err := s.b().GetFile(ctx, pluginapi.GetRequest{Key: key, Offset: 1, Length: uint64(n - 2)}, dst)
			noErr(t, RuleFiles, err, "ranged GetFile")
			got, _ := os.ReadFile(dst)
			check(t, RuleFiles, bytes.Equal(got, data[1:n-1]) && rng.Offset == 1, "ranged GetFile: got %d bytes at header offset %d, want the %d bytes at offset 1", len(got), rng.Offset, n-2)
		}
	}
	// Put then GetFile: the two paths see the same object.
	key := s.key("files/streamed")
	data := pattern(77, 3*c)
	s.put(t, ctx, s.b(), key, data)
	dst := s.tempPath(t, "streamed")
	_, err := s.b().GetFile(ctx, pluginapi.GetRequest{Key: key}, dst)
	noErr(t, RuleFiles, err, "GetFile of a streamed Put")
	got, _ := os.ReadFile(dst)
	check(t, RuleFiles, bytes.Equal(got, data), "GetFile of a streamed Put: got %d bytes (first difference at %d), want the %d bytes stored", len(got), firstDiff(got, data), len(data))
}

func testFileErrors(t T, s *suite) {
	if !s.caps().PutFile || !s.caps().GetFile {
		t.Skipf("put_file/get_file not advertised (Unimplemented checked by UnadvertisedFeatures)")
	}
	ctx, cancel := s.ctx(t)
	defer cancel()
	data := []byte("file contents")
	crc := pluginapi.CRC64(data)
	src := s.tempFile(t, data)

	key := s.key("file-errors/bad-crc")
	_, err := s.b().PutFile(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(data)), CRC64: crc ^ 1}, src)
	wantErr(t, RuleFiles, err, pluginapi.ErrChecksum, "PutFile with a wrong CRC-64/NVME")
	s.absent(t, ctx, RuleFiles, key, "after a PutFile with a wrong checksum")

	key = s.key("file-errors/bad-size")
	_, err = s.b().PutFile(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(data)) + 5, CRC64: crc}, src)
	wantErr(t, RuleFiles, err, pluginapi.ErrChecksum, "PutFile declaring more bytes than the file has")
	s.absent(t, ctx, RuleFiles, key, "after a PutFile with a wrong size")

	// A file longer than declared is not cut to the declared size, even
	// when the declared CRC-64/NVME is that of the first bytes.
	key = s.key("file-errors/long-file")
	short := data[:len(data)-5]
	_, err = s.b().PutFile(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(short)), CRC64: pluginapi.CRC64(short)}, src)
	wantErr(t, RuleFiles, err, pluginapi.ErrChecksum, "PutFile from a file 5 bytes longer than declared")
	s.absent(t, ctx, RuleFiles, key, "after a PutFile from a file longer than declared")

	key = s.key("file-errors/paths")
	for what, p := range map[string]string{
		"a missing file":  filepath.Join(filepath.Dir(src), "does-not-exist"),
		"a relative path": "relative/file",
		"an unclean path": filepath.Dir(src) + "/../" + filepath.Base(filepath.Dir(src)) + "/" + filepath.Base(src),
		"a directory":     filepath.Dir(src),
	} {
		_, err = s.b().PutFile(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(data)), CRC64: crc}, p)
		wantErr(t, RuleFiles, err, pluginapi.ErrInvalidArgument, "PutFile from %s", what)
	}
	s.absent(t, ctx, RuleFiles, key, "after refused PutFiles")
	s.put(t, ctx, s.b(), key, data)
	_, err = s.b().GetFile(ctx, pluginapi.GetRequest{Key: key}, "relative/out")
	wantErr(t, RuleFiles, err, pluginapi.ErrInvalidArgument, "GetFile to a relative path")
	if s.tgt.StagingDir != "" {
		outside := filepath.Join(os.TempDir(), "aof2-conformance-outside-staging")
		_, err = s.b().GetFile(ctx, pluginapi.GetRequest{Key: key}, outside)
		wantErr(t, RuleFiles, err, pluginapi.ErrInvalidArgument, "GetFile outside the staging directory")
		_ = os.Remove(outside)
	}
}
