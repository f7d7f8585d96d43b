package tier2

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
)

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "artifact.seg.zst")
	require.NoError(t, os.WriteFile(p, data, 0o600))
	return p
}

func TestUploadSegmentCarriesChecksumAndMetadata(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	data := payload(300<<10, 1)
	up, err := e.store.UploadSegment(context.Background(), sk(7, 3), writeFile(t, data), SegmentInfo{RecordCount: 11, BaseRecord: 100})
	require.NoError(t, err)
	assert.Equal(t, "streams/7/segments/00000000000000000003.seg.zst", up.Key)
	assert.False(t, up.AlreadyPresent)
	assert.Equal(t, pluginapi.CRC64(data), up.CRC64)
	assert.Equal(t, uint64(len(data)), up.Size)

	got, info := e.rawGet(up.Key)
	assert.Equal(t, data, got)
	assert.Equal(t, up.ETag, info.ETag)
	meta, err := ParseMetadata(info.Metadata)
	require.NoError(t, err)
	assert.Equal(t, ObjectMeta{Ref: Ref{KindSegment, 7, 3}, RecordCount: 11, BaseRecord: 100,
		CRC64: pluginapi.CRC64(data), HasCRC64: true, Size: uint64(len(data))}, meta)
	// PutFile was used (the fake advertises it), then one verifying Head.
	assert.Equal(t, 1.0, e.requests(ClassPut, OutcomeOK))
	assert.Equal(t, 1.0, e.requests(ClassHead, OutcomeOK))
	assert.Equal(t, float64(len(data)), e.metric("aof_tier2_uploaded_bytes_total", nil))
}

func TestUploadStreamsWithoutPutFile(t *testing.T) {
	caps := pluginapi.Capabilities{RangeGet: true, IfAbsent: true, IfMatch: true, List: true}
	e := newEnv(t, fake.Options{Capabilities: &caps}, nil)
	data := payload(2<<20+5, 2)
	up, err := e.store.UploadSegment(context.Background(), sk(1, 1), writeFile(t, data), SegmentInfo{})
	require.NoError(t, err)
	got, _ := e.rawGet(up.Key)
	assert.Equal(t, data, got)
}

func TestUploadManifestObjects(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	ctx := context.Background()
	chunk, snap := payload(4096, 3), payload(999, 4)
	up, err := e.store.UploadManifestChunk(ctx, 9, 2, chunk)
	require.NoError(t, err)
	assert.Equal(t, "streams/9/manifest/00000000000000000002.mlog", up.Key)
	up2, err := e.store.UploadSnapshot(ctx, 9, 5, SnapshotPosition{ChunkIndex: 3, ChunkOffset: 4096}, snap)
	require.NoError(t, err)
	assert.Equal(t, "streams/9/manifest/00000000000000000005.snap", up2.Key)
	_, info := e.rawGet(up2.Key)
	meta, err := ParseMetadata(info.Metadata)
	require.NoError(t, err)
	assert.Equal(t, Ref{KindSnapshot, 9, 5}, meta.Ref)
	assert.True(t, meta.HasPosition)
	assert.Equal(t, [2]uint64{3, 4096}, [2]uint64{meta.SnapshotChunk, meta.SnapshotOffset})
}

// Each fault mode the fake injects into an upload is survived: the
// object ends up stored with the right bytes, after the expected retries.
func TestUploadSurvivesFaults(t *testing.T) {
	cases := []struct {
		name    string
		faults  []fake.Fault
		tweak   func(*Config)
		retries uint64
		check   func(t *testing.T, e *env, up Uploaded)
	}{
		{name: "throttle honours retry-after",
			faults:  []fake.Fault{{Mode: fake.Throttle, Ops: []fake.Op{fake.OpPutFile}, Count: 2, RetryAfter: 7 * time.Second}},
			retries: 2,
			check: func(t *testing.T, e *env, _ Uploaded) {
				sleeps := e.clock.Sleeps()
				require.Len(t, sleeps, 2)
				for _, d := range sleeps {
					assert.GreaterOrEqual(t, d, 7*time.Second)
				}
				assert.Equal(t, 2.0, e.requests(ClassPut, OutcomeThrottled))
				assert.Equal(t, BreakerClosed, e.store.Health().State, "throttling does not trip the breaker")
			}},
		{name: "unavailable then recovery",
			faults:  []fake.Fault{{Mode: fake.ServerError, Ops: []fake.Op{fake.OpPutFile}, Count: 3}},
			retries: 3,
			check: func(t *testing.T, e *env, _ Uploaded) {
				assert.Equal(t, 3.0, e.requests(ClassPut, OutcomeUnavailable))
				for i, d := range e.clock.Sleeps() {
					assert.LessOrEqual(t, d, e.store.cfg.Backoff.Initial<<i, "full jitter stays under the exponential cap")
				}
			}},
		{name: "crash mid-stream",
			faults: []fake.Fault{{Mode: fake.Crash, Ops: []fake.Op{fake.OpPut}, Count: 1, AfterBytes: 100 << 10}},
			tweak: func(c *Config) {
				c.Info = &pluginapi.Info{Capabilities: pluginapi.Capabilities{IfAbsent: true, RangeGet: true}}
			},
			retries: 1},
		{name: "acknowledged with a wrong checksum",
			faults:  []fake.Fault{{Mode: fake.WrongChecksum, Ops: []fake.Op{fake.OpPutFile}, Count: 1}},
			retries: 1,
			check: func(t *testing.T, _ *env, up Uploaded) {
				assert.True(t, up.AlreadyPresent, "the retry found the first attempt's object")
			}},
		{name: "acknowledged but not stored",
			faults:  []fake.Fault{{Mode: fake.DropPut, Count: 1}},
			retries: 1},
		{name: "hung backend bounded by the attempt timeout",
			faults: []fake.Fault{{Mode: fake.Timeout, Ops: []fake.Op{fake.OpPutFile}, Count: 1}},
			// The hung attempt lasts the whole timeout; the healthy retry
			// must fit in it even on a loaded CI machine (at 20 ms it did
			// not always).
			tweak:   func(c *Config) { c.AttemptTimeout = time.Second },
			retries: 1,
			check: func(t *testing.T, e *env, _ Uploaded) {
				assert.Equal(t, 1.0, e.requests(ClassPut, OutcomeTimeout))
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fake.Options{}, tc.tweak)
			require.NoError(t, e.fake.Inject(tc.faults...))
			data := payload(256<<10, 5)
			up, err := e.store.UploadSegment(context.Background(), sk(1, 2), writeFile(t, data), SegmentInfo{RecordCount: 1})
			require.NoError(t, err)
			got, info := e.rawGet(up.Key)
			assert.Equal(t, data, got)
			assert.Equal(t, info.ETag, up.ETag)
			assert.Equal(t, tc.retries, e.retries(OpUpload))
			assert.NotEmpty(t, e.fake.Injected())
			if tc.check != nil {
				tc.check(t, e, up)
			}
		})
	}
}

func TestUploadRetriesPluginCrash(t *testing.T) {
	fb := fake.New(fake.Options{})
	h := &hook{Backend: fb}
	h.before = failTimes("put_file", 2, &pluginapi.Error{Code: pluginapi.CodePluginCrashed, Message: "plugin died"})
	e := newEnvWith(t, fb, h, nil)
	up, err := e.store.UploadSegment(context.Background(), sk(1, 1), writeFile(t, payload(1000, 6)), SegmentInfo{})
	require.NoError(t, err)
	assert.False(t, up.AlreadyPresent)
	assert.Equal(t, 2.0, e.requests(ClassPut, OutcomeCrashed))
	assert.Equal(t, uint64(2), e.retries(OpUpload))
}

func TestUploadExistingObject(t *testing.T) {
	t.Run("same checksum is done, nothing rewritten", func(t *testing.T) {
		e := newEnv(t, fake.Options{}, nil)
		data := payload(5000, 7)
		first, err := e.store.UploadManifestChunk(context.Background(), 1, 1, data)
		require.NoError(t, err)
		again, err := e.store.UploadManifestChunk(context.Background(), 1, 1, data)
		require.NoError(t, err)
		assert.True(t, again.AlreadyPresent)
		assert.Equal(t, first.ETag, again.ETag, "the object was not rewritten")
		assert.Equal(t, 1.0, e.requests(ClassPut, OutcomeExists))
	})
	t.Run("different checksum is data loss, never an overwrite", func(t *testing.T) {
		e := newEnv(t, fake.Options{}, nil)
		key := e.store.Layout().ManifestChunkKey(1, 1)
		old := payload(5000, 8)
		oldInfo := e.rawPut(key, old, nil)
		_, err := e.store.UploadManifestChunk(context.Background(), 1, 1, payload(5000, 9))
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrDataLoss)
		var dl *DataLossError
		require.ErrorAs(t, err, &dl)
		assert.Equal(t, pluginapi.CRC64(old), dl.RemoteCRC64)
		assert.Equal(t, pluginapi.CRC64(payload(5000, 9)), dl.LocalCRC64)
		got, info := e.rawGet(key)
		assert.Equal(t, old, got)
		assert.Equal(t, oldInfo.ETag, info.ETag)
		assert.Equal(t, 1.0, e.metric("aof_tier2_data_loss_total", nil))
		assert.Equal(t, uint64(0), e.retries(OpUpload), "data loss is not retried")
	})
	t.Run("a Head that misreports once is not data loss", func(t *testing.T) {
		e := newEnv(t, fake.Options{}, nil)
		data := payload(5000, 10)
		_, err := e.store.UploadManifestChunk(context.Background(), 1, 1, data)
		require.NoError(t, err)
		require.NoError(t, e.fake.Inject(fake.Fault{Mode: fake.WrongChecksum, Ops: []fake.Op{fake.OpHead}, Count: 1}))
		again, err := e.store.UploadManifestChunk(context.Background(), 1, 1, data)
		require.NoError(t, err)
		assert.True(t, again.AlreadyPresent)
	})
	t.Run("without if_absent the store looks first", func(t *testing.T) {
		caps := pluginapi.Capabilities{RangeGet: true, List: true}
		e := newEnv(t, fake.Options{Capabilities: &caps}, nil)
		key := e.store.Layout().ManifestChunkKey(1, 1)
		e.rawPut(key, payload(10, 1), nil)
		_, err := e.store.UploadManifestChunk(context.Background(), 1, 1, payload(10, 2))
		assert.ErrorIs(t, err, ErrDataLoss)
		up, err := e.store.UploadManifestChunk(context.Background(), 1, 2, payload(10, 2))
		require.NoError(t, err)
		assert.False(t, up.AlreadyPresent)
	})
}

func TestUploadGivesUp(t *testing.T) {
	t.Run("retryable failures exhaust the attempts", func(t *testing.T) {
		e := newEnv(t, fake.Options{}, func(c *Config) { c.Backoff.Attempts = 4; c.Breaker.Threshold = 100 })
		require.NoError(t, e.fake.Inject(fake.Fault{Mode: fake.ServerError}))
		_, err := e.store.UploadManifestChunk(context.Background(), 1, 1, payload(10, 1))
		assert.ErrorIs(t, err, pluginapi.ErrUnavailable)
		assert.Equal(t, uint64(3), e.retries(OpUpload))
		assert.Equal(t, uint64(1), e.store.Stats().Failures[OpUpload])
		assert.Equal(t, 0, e.fake.Len())
	})
	t.Run("permanent errors are not retried", func(t *testing.T) {
		fb := fake.New(fake.Options{})
		h := &hook{Backend: fb}
		h.before = failTimes("put", 5, &pluginapi.Error{Code: pluginapi.CodeAuth, Message: "expired"})
		e := newEnvWith(t, fb, h, nil)
		_, err := e.store.UploadManifestChunk(context.Background(), 1, 1, payload(10, 1))
		assert.ErrorIs(t, err, pluginapi.ErrAuth)
		assert.Equal(t, uint64(0), e.retries(OpUpload))
		assert.Equal(t, BreakerClosed, e.store.Health().State, "an answer is not a backend failure")
	})
	t.Run("a local file that changed is refused", func(t *testing.T) {
		e := newEnv(t, fake.Options{}, nil)
		data := payload(100, 1)
		_, err := e.store.Put(context.Background(), Upload{Key: "x/y", Path: writeFile(t, data), WantCRC64: pluginapi.CRC64(data) ^ 1, HasWantCRC64: true})
		assert.ErrorIs(t, err, ErrChecksum)
		assert.Equal(t, 0.0, e.requests(ClassPut, OutcomeOK))
		assert.Equal(t, 0, e.fake.Len())
	})
	t.Run("invalid inputs", func(t *testing.T) {
		e := newEnv(t, fake.Options{}, nil)
		_, err := e.store.UploadSegment(context.Background(), sk(1, 1<<32), "/nonexistent", SegmentInfo{})
		assert.ErrorIs(t, err, ErrInvalidKey)
		_, err = e.store.Put(context.Background(), Upload{Key: "../x", Data: []byte("a")})
		assert.ErrorIs(t, err, pluginapi.ErrInvalidKey)
		_, err = e.store.UploadSegment(context.Background(), sk(1, 1), filepath.Join(t.TempDir(), "missing"), SegmentInfo{})
		assert.True(t, errors.Is(err, os.ErrNotExist), "%v", err)
	})
}
