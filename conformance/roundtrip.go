package conformance

import (
	"fmt"
	"maps"
	"strings"

	"github.com/aof2/aof2/pluginapi"
)

func roundTripBehaviours() []behaviour {
	return []behaviour{
		{"Sizes", testSizes},
		{"TinyChunks", testTinyChunks},
		{"Head", testHead},
		{"Overwrite", testOverwrite},
		{"Metadata", testMetadata},
		{"Large", testLarge},
	}
}

func testSizes(t T, s *suite) {
	c := int(s.tgt.ChunkSize)
	for _, n := range []int{0, 1, c - 1, c, c + 1, 3*c + 17} {
		t.Run(fmt.Sprintf("%d", n), func(t T) {
			ctx, cancel := s.ctx(t)
			defer cancel()
			key := s.key(fmt.Sprintf("sizes/%d", n))
			data := pattern(uint64(n), n)
			s.put(t, ctx, s.b(), key, data)
			rng := s.mustGet(t, ctx, key, data)
			check(t, RuleRoundTrip, rng.Offset == 0 && rng.Length == uint64(n) && rng.Info.Size == uint64(n),
				"Get header: got offset %d length %d size %d, want 0 %d %d", rng.Offset, rng.Length, rng.Info.Size, n, n)
		})
	}
}

// testTinyChunks sends objects in chunks far smaller than negotiated, with
// boundaries that fall everywhere: the plugin must reassemble by offset.
func testTinyChunks(t T, s *suite) {
	ctx, cancel := s.ctx(t)
	defer cancel()
	for _, step := range []uint32{1, 7, 4093} {
		data := pattern(uint64(step), 10007)
		key := s.key(fmt.Sprintf("tiny-chunks/%d", step))
		info, err := s.b().WithSendChunkSize(step).Put(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}, strings.NewReader(string(data)))
		noErr(t, RuleChunking, err, "Put in %d-byte chunks", step)
		checkAck(t, info, key, uint64(len(data)), pluginapi.CRC64(data))
		s.mustGet(t, ctx, key, data)
	}
	// The smallest chunk size a host may negotiate, end to end.
	tgt, err := s.h.Start(ctx, StartOptions{ChunkSize: pluginapi.MinChunkSize})
	noErr(t, RuleChunkNegotiate, err, "starting with the minimum chunk size")
	defer func() { _ = tgt.Close() }()
	data := pattern(99, int(tgt.ChunkSize)*5+3)
	key := s.key("tiny-chunks/min-negotiated")
	s.put(t, ctx, tgt.Backend, key, data)
	_, got, err := s.get(ctx, tgt.Backend, pluginapi.GetRequest{Key: key})
	noErr(t, RuleChunking, err, "Get with the minimum chunk size")
	check(t, RuleChunking, string(got) == string(data), "round trip with %d-byte chunks: got %d bytes (first difference at %d), want the %d bytes stored", tgt.ChunkSize, len(got), firstDiff(got, data), len(data))
}

func testHead(t T, s *suite) {
	ctx, cancel := s.ctx(t)
	defer cancel()
	key := s.key("head/object")
	data := pattern(5, 4321)
	md := map[string]string{"stream": "7", "segment": "00000000000000000042"}
	ack := s.putReq(t, ctx, s.b(), pluginapi.PutRequest{Key: key, Metadata: md}, data)
	info, err := s.b().Head(ctx, key)
	noErr(t, RuleHead, err, "Head %q", key)
	check(t, RuleHead, info.Key == key && info.Size == uint64(len(data)), "got key %q size %d, want %q %d", info.Key, info.Size, key, len(data))
	check(t, RuleHead, info.ETag == ack.ETag, "got etag %q, want the Put's %q", info.ETag, ack.ETag)
	check(t, RuleHead, info.HasCRC64 && info.CRC64 == pluginapi.CRC64(data), "got CRC-64/NVME %016x (present %v), want %016x (present true)", info.CRC64, info.HasCRC64, pluginapi.CRC64(data))
	check(t, RuleHead, maps.Equal(info.Metadata, md), "got metadata %v, want %v (what the Put stored)", info.Metadata, md)
	check(t, RuleHead, !info.ModTime.IsZero(), "got no modification time, want the time the object was written")
}

func testOverwrite(t T, s *suite) {
	ctx, cancel := s.ctx(t)
	defer cancel()
	key := s.key("overwrite/object")
	first := s.put(t, ctx, s.b(), key, []byte("first version"))
	second := s.put(t, ctx, s.b(), key, []byte("second, longer version"))
	check(t, RuleOverwrite, first.ETag != second.ETag, "etag after an overwrite: got %q, want one different from %q", second.ETag, first.ETag)
	s.mustGetAs(t, ctx, RuleOverwrite, key, []byte("second, longer version"))
	third := s.put(t, ctx, s.b(), key, []byte("first version"))
	check(t, RuleOverwrite, third.ETag != second.ETag, "etag after the content changed back: got %q, want one different from %q", third.ETag, second.ETag)
}

func testMetadata(t T, s *suite) {
	ctx, cancel := s.ctx(t)
	defer cancel()
	limit := int(s.tgt.Info.Limits.MaxMetadataBytes)
	// Fill the advertised budget exactly, in several entries.
	md := map[string]string{}
	for i := 0; pluginapi.MetadataSize(md) < limit; i++ {
		k := fmt.Sprintf("k%03d", i)
		room := limit - pluginapi.MetadataSize(md) - len(k)
		if room < 0 {
			break
		}
		md[k] = strings.Repeat(string(rune('a'+i%26)), min(room, 200))
	}
	key := s.key("metadata/full")
	s.putReq(t, ctx, s.b(), pluginapi.PutRequest{Key: key, Metadata: md}, []byte("x"))
	info, err := s.b().Head(ctx, key)
	noErr(t, RuleMetadata, err, "Head")
	check(t, RuleMetadata, maps.Equal(info.Metadata, md), "metadata of %d bytes did not round-trip: got %d entries (%d bytes), want %d entries", pluginapi.MetadataSize(md), len(info.Metadata), pluginapi.MetadataSize(info.Metadata), len(md))
	rng, _, err := s.get(ctx, s.b(), pluginapi.GetRequest{Key: key})
	noErr(t, RuleMetadata, err, "Get")
	check(t, RuleMetadata, maps.Equal(rng.Info.Metadata, md), "Get header metadata: got %d entries (%d bytes), want the %d entries (%d bytes) stored", len(rng.Info.Metadata), pluginapi.MetadataSize(rng.Info.Metadata), len(md), pluginapi.MetadataSize(md))

	over := maps.Clone(md)
	over["zz-over"] = "1"
	bad := map[string]map[string]string{
		"over the limit":    over,
		"upper-case key":    {"Stream": "1"},
		"empty key":         {"": "1"},
		"control character": {"k": "a\nb"},
		"key with a slash":  {"a/b": "1"},
	}
	for what, m := range bad {
		k := s.key("metadata/bad")
		err := rawPut(ctx, s.b().Raw(), headerMD(k, []byte("x"), m), chunk(0, []byte("x")))
		wantErr(t, RuleMetadata, err, pluginapi.ErrInvalidArgument, "Put with metadata %s", what)
		s.absent(t, ctx, RuleMetadata, k, "after a Put with bad metadata")
	}
}

func testLarge(t T, s *suite) {
	if s.opts.Quick {
		t.Skipf("quick run: large objects skipped")
	}
	sizes := []uint64{64 << 20}
	if s.opts.Large {
		sizes = append(sizes, 1<<30)
	}
	if m := s.tgt.Info.Limits.MaxObjectSize; m != 0 {
		for i, n := range sizes {
			sizes[i] = min(n, m)
		}
	}
	for _, n := range sizes {
		t.Run(fmt.Sprintf("%dMiB", n>>20), func(t T) {
			ctx, cancel := s.ctx(t)
			defer cancel()
			key := s.key(fmt.Sprintf("large/%d", n))
			seed := n ^ 0xa5
			crc, _, _ := pluginapi.CRC64Reader(&patternReader{seed: seed, n: n})
			info, err := s.b().Put(ctx, pluginapi.PutRequest{Key: key, Size: n, CRC64: crc}, &patternReader{seed: seed, n: n})
			noErr(t, RuleLarge, err, "Put of %d bytes", n)
			checkAck(t, info, key, n, crc)
			_, rc, err := s.b().Get(ctx, pluginapi.GetRequest{Key: key})
			noErr(t, RuleLarge, err, "Get of %d bytes", n)
			defer func() { _ = rc.Close() }()
			got, m, err := pluginapi.CRC64Reader(rc)
			noErr(t, RuleLarge, err, "reading %d bytes", n)
			check(t, RuleLarge, m == n && got == crc, "got %d bytes with CRC-64/NVME %016x, want %d with %016x", m, got, n, crc)
			noErr(t, RuleLarge, s.b().Delete(ctx, key), "Delete")
		})
	}
}
