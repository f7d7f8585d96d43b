package conformance

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"github.com/aof2/aof2/pluginapi"
	pb "github.com/aof2/aof2/pluginapi/proto/aof2/backend/v1"
)

func integrityBehaviours() []behaviour {
	return []behaviour{
		{"VisibleOnlyAfterPut", testVisibility},
		{"CancelledPut", testCancelledPut},
		{"ChecksumMismatch", testChecksumMismatch},
		{"MalformedPutStream", testFraming},
	}
}

// gatedBody yields head, then blocks until release is closed (or fails with
// abort's error), then yields tail.
type gatedBody struct {
	head, tail []byte
	reached    chan struct{}
	release    chan struct{}
	ctx        context.Context
	passed     bool
}

func newGatedBody(ctx context.Context, head, tail []byte) *gatedBody {
	return &gatedBody{head: head, tail: tail, reached: make(chan struct{}), release: make(chan struct{}), ctx: ctx}
}

func (g *gatedBody) Read(p []byte) (int, error) {
	if len(g.head) > 0 {
		n := copy(p, g.head)
		g.head = g.head[n:]
		return n, nil
	}
	if !g.passed {
		close(g.reached)
		select {
		case <-g.release:
			g.passed = true
		case <-g.ctx.Done():
			return 0, g.ctx.Err()
		}
	}
	if len(g.tail) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.tail)
	g.tail = g.tail[n:]
	return n, nil
}

// startGatedPut starts a Put whose body stalls after two full chunks.
func (s *suite) startGatedPut(ctx context.Context, key string, data []byte) (*gatedBody, chan error) {
	cut := min(len(data), 2*int(s.tgt.ChunkSize)+10)
	body := newGatedBody(ctx, data[:cut], data[cut:])
	done := make(chan error, 1)
	go func() {
		_, err := s.b().Put(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}, body)
		done <- err
	}()
	return body, done
}

func testVisibility(t T, s *suite) {
	ctx, cancel := s.ctx(t)
	defer cancel()
	key := s.key("visibility/object")
	data := pattern(11, 3*int(s.tgt.ChunkSize)+100)
	body, done := s.startGatedPut(ctx, key, data)
	select {
	case <-body.reached:
	case err := <-done:
		fail(t, RuleVisibility, "Put ended before its body did: got %v, want it to wait for the rest of the body", err)
	}
	time.Sleep(50 * time.Millisecond) // let the chunks sent so far arrive
	s.absent(t, ctx, RuleVisibility, key, "while its Put is in flight")
	_, _, err := s.get(ctx, s.b(), pluginapi.GetRequest{Key: key})
	wantErr(t, RuleVisibility, err, pluginapi.ErrNotFound, "Get while the Put is in flight")
	if s.caps().List {
		n := 0
		err := s.b().List(ctx, pluginapi.ListRequest{Prefix: key}, func(p []pluginapi.ObjectInfo) error { n += len(p); return nil })
		noErr(t, RuleVisibility, err, "List while the Put is in flight")
		check(t, RuleVisibility, n == 0, "List while the Put is in flight: got %d objects, want 0", n)
	}
	close(body.release)
	noErr(t, RuleVisibility, <-done, "completing the Put")
	s.mustGetAs(t, ctx, RuleVisibility, key, data)
}

func testCancelledPut(t T, s *suite) {
	for _, existing := range []bool{false, true} {
		name := "new-key"
		if existing {
			name = "existing-key"
		}
		t.Run(name, func(t T) {
			ctx, cancel := s.ctx(t)
			defer cancel()
			key := s.key("cancelled/" + name)
			old := []byte("the previous version")
			if existing {
				s.put(t, ctx, s.b(), key, old)
			}
			putCtx, putCancel := context.WithCancel(ctx)
			body, done := s.startGatedPut(putCtx, key, pattern(12, 3*int(s.tgt.ChunkSize)+5))
			var err error
			select {
			case <-body.reached:
				putCancel()
				err = <-done
			case err = <-done: // the Put ended before reading its body: a failure below
				putCancel()
			case <-ctx.Done():
				putCancel()
				fail(t, RuleCancel, "Put did not read the first chunks of its body: got nothing within the behaviour's timeout, want it to read them")
				return
			}
			check(t, RuleCancel, err != nil, "a Put cancelled mid-body: got success, want an error")
			// Give a backend that commits on cancellation the time to do it.
			time.Sleep(200 * time.Millisecond)
			if existing {
				s.mustGetAs(t, ctx, RuleCancel, key, old)
			} else {
				s.absent(t, ctx, RuleCancel, key, "after a cancelled Put")
			}
		})
	}
}

func testChecksumMismatch(t T, s *suite) {
	ctx, cancel := s.ctx(t)
	defer cancel()
	data := pattern(13, int(s.tgt.ChunkSize)+99)
	crc := pluginapi.CRC64(data)
	cases := []struct {
		name string
		req  pluginapi.PutRequest
		body []byte
	}{
		{"wrong-crc", pluginapi.PutRequest{Size: uint64(len(data)), CRC64: crc ^ 0x8000}, data},
		{"short-body", pluginapi.PutRequest{Size: uint64(len(data)) + 1, CRC64: crc}, data},
		{"long-body", pluginapi.PutRequest{Size: uint64(len(data)) - 1, CRC64: pluginapi.CRC64(data[:len(data)-1])}, data},
	}
	for _, c := range cases {
		for _, existing := range []bool{false, true} {
			key := s.key("checksum/" + c.name)
			if existing {
				key += "-existing"
				s.put(t, ctx, s.b(), key, []byte("intact"))
			}
			req := c.req
			req.Key = key
			_, err := s.b().Put(ctx, req, bytes.NewReader(c.body))
			wantErr(t, RuleChecksum, err, pluginapi.ErrChecksum, "Put %s (existing object: %v)", c.name, existing)
			if existing {
				s.mustGetAs(t, ctx, RuleChecksum, key, []byte("intact"))
			} else {
				s.absent(t, ctx, RuleChecksum, key, "after a rejected Put ("+c.name+")")
			}
		}
	}
}

func testFraming(t T, s *suite) {
	ctx, cancel := s.ctx(t)
	defer cancel()
	raw := s.b().Raw()
	data := pattern(14, 300)
	maxChunk := s.tgt.Info.Limits.MaxChunkSize
	if maxChunk == 0 {
		maxChunk = pluginapi.MaxChunkSize
	}
	big := pattern(15, int(maxChunk)+1)
	cases := []struct {
		name string
		key  string
		msgs func(key string) []*pb.PutRequest
	}{
		{"no-header", "framing/no-header", func(k string) []*pb.PutRequest { return []*pb.PutRequest{chunk(0, data)} }},
		{"offset-gap", "framing/gap", func(k string) []*pb.PutRequest {
			return []*pb.PutRequest{header(k, data), chunk(0, data[:100]), chunk(150, data[150:])}
		}},
		{"offset-overlap", "framing/overlap", func(k string) []*pb.PutRequest {
			return []*pb.PutRequest{header(k, data), chunk(0, data[:100]), chunk(50, data[50:])}
		}},
		{"oversized-chunk", "framing/oversized", func(k string) []*pb.PutRequest {
			return []*pb.PutRequest{header(k, big), chunk(0, big)}
		}},
		{"second-header", "framing/second-header", func(k string) []*pb.PutRequest {
			return []*pb.PutRequest{header(k, data), chunk(0, data[:100]), header(k, data), chunk(100, data[100:])}
		}},
	}
	for _, c := range cases {
		key := s.key(c.key)
		err := rawPut(ctx, raw, c.msgs(key)...)
		wantErr(t, RuleFraming, err, pluginapi.ErrInvalidArgument, "Put stream with %s", c.name)
		s.absent(t, ctx, RuleFraming, key, "after a malformed Put stream ("+c.name+")")
	}
	// An empty stream (the host gave up before the header) must not crash
	// the plugin; the next call still works.
	err := rawPut(ctx, raw)
	check(t, RuleFraming, err != nil && !errors.Is(err, pluginapi.ErrPluginCrashed), "an empty Put stream: got %v, want an error from a plugin that keeps running", err)
	noErr(t, RuleFraming, s.b().Probe(ctx, pluginapi.ProbeRequest{}), "Probe after malformed streams")
}
