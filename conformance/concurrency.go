package conformance

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/aof2/aof2/pluginapi"
)

func concurrencyBehaviours() []behaviour {
	return []behaviour{{"ConcurrentStreams", testConcurrent}}
}

func testConcurrent(t T, s *suite) {
	ctx, cancel := s.ctx(t)
	defer cancel()
	workers := 8
	if m := s.tgt.Info.Limits.MaxConcurrentStreams; m != 0 {
		workers = min(workers, int(m))
	}
	size := int(s.tgt.ChunkSize) + 1234 // two messages per stream
	shared := s.key("concurrent/shared")
	versions := map[uint64][]byte{}
	errs := make(chan error, workers*4)
	var wg sync.WaitGroup
	for w := range workers {
		data := pattern(uint64(100+w), size)
		versions[pluginapi.CRC64(data)] = data
		own := s.key(fmt.Sprintf("concurrent/worker-%d", w))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 3 {
				for _, key := range []string{own, shared} {
					if _, err := s.b().Put(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}, bytes.NewReader(data)); err != nil {
						errs <- fmt.Errorf("worker %d round %d Put %q: got %w, want success", w, round, key, err)
						return
					}
				}
				_, rc, err := s.b().Get(ctx, pluginapi.GetRequest{Key: own})
				if err != nil {
					errs <- fmt.Errorf("worker %d Get: got %w, want success", w, err)
					return
				}
				got, err := io.ReadAll(rc)
				_ = rc.Close()
				if err != nil || !bytes.Equal(got, data) {
					errs <- fmt.Errorf("worker %d read back: got %d bytes (error %v) differing from its own, want its own %d bytes", w, len(got), err, len(data))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		check(t, RuleConcurrency, false, "%v", err)
	}
	// The shared key holds exactly one of the versions written, whole.
	_, got, err := s.get(ctx, s.b(), pluginapi.GetRequest{Key: shared})
	noErr(t, RuleConcurrency, err, "Get of the key every worker wrote")
	want, ok := versions[pluginapi.CRC64(got)]
	check(t, RuleConcurrency, ok && bytes.Equal(got, want), "the key every worker wrote: got %d bytes that match no single writer (interleaved writes?), want exactly one writer's %d bytes", len(got), size)
}
