package fs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/fs"
)

func listKeys(t *testing.T, b pluginapi.Backend, req pluginapi.ListRequest) []string {
	t.Helper()
	var keys []string
	require.NoError(t, b.List(t.Context(), req, func(p []pluginapi.ObjectInfo) error {
		for _, o := range p {
			keys = append(keys, o.Key)
		}
		return nil
	}))
	return keys
}

func TestFailedPutLeavesNoTrace(t *testing.T) {
	b, root, _ := newFS(t)
	ctx := t.Context()
	data := []byte("0123456789")
	body := io.MultiReader(strings.NewReader("01234"), iotest.ErrReader(errors.New("disk on fire")))
	_, err := b.Put(ctx, pluginapi.PutRequest{Key: "a/b", Size: 10, CRC64: pluginapi.CRC64(data)}, body)
	require.ErrorContains(t, err, "disk on fire")
	_, err = b.Head(ctx, "a/b")
	require.ErrorIs(t, err, pluginapi.ErrNotFound)
	tmp, err := os.ReadDir(filepath.Join(root, "tmp"))
	require.NoError(t, err)
	require.Empty(t, tmp, "a failed Put left a temporary file")

	// A cancelled Put too.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = put(cctx, b, "a/c", data)
	require.ErrorIs(t, err, context.Canceled)
	tmp, _ = os.ReadDir(filepath.Join(root, "tmp"))
	require.Empty(t, tmp)
}

func TestStaleTempFilesRemovedAtConfigure(t *testing.T) {
	b, root, _ := newFS(t)
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	stale := filepath.Join(root, "tmp", fmt.Sprintf("%d-deadbeef.tmp", dead.Process.Pid))
	live := filepath.Join(root, "tmp", fmt.Sprintf("%d-cafebabe.tmp", os.Getppid()))
	require.NoError(t, os.WriteFile(stale, []byte("half an upload"), 0o600))
	require.NoError(t, os.WriteFile(live, []byte("someone else's upload"), 0o600))
	_, err := b.Configure(t.Context(), pluginapi.ConfigureRequest{Config: map[string]string{"root": root}})
	require.NoError(t, err)
	require.NoFileExists(t, stale, "a dead writer's temporary file survived Configure")
	require.FileExists(t, live, "a live process's temporary file was removed")
}

func TestCorruptObjectIsDataLoss(t *testing.T) {
	b, root, _ := newFS(t)
	ctx := t.Context()
	_, err := put(ctx, b, "x", []byte("some bytes"))
	require.NoError(t, err)
	path := filepath.Join(root, "objects", "x.o")
	raw, err := os.ReadFile(path)
	require.NoError(t, err)

	raw[20] ^= 1 // inside the header
	require.NoError(t, os.WriteFile(path, raw, 0o600))
	_, err = b.Head(ctx, "x")
	require.ErrorIs(t, err, pluginapi.ErrChecksum)
	raw[20] ^= 1

	require.NoError(t, os.WriteFile(path, raw[:len(raw)-1], 0o600)) // truncated
	_, _, err = b.Get(ctx, pluginapi.GetRequest{Key: "x"})
	require.ErrorIs(t, err, pluginapi.ErrChecksum)
	require.Equal(t, []string(nil), listKeysOrErr(b, t))
}

func listKeysOrErr(b pluginapi.Backend, t *testing.T) []string {
	err := b.List(t.Context(), pluginapi.ListRequest{}, func([]pluginapi.ObjectInfo) error { return nil })
	require.ErrorIs(t, err, pluginapi.ErrChecksum, "List over a corrupt object must say so")
	return nil
}

// The directory walk must list keys in byte order whatever their shape:
// prefixes of each other, characters on both sides of '/', and segments
// long enough to be split into continuation directories.
func TestListOrderMatchesByteOrder(t *testing.T) {
	b, _, _ := newFS(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", ".", "-", "0", "~", "/"}
	long := strings.Repeat("L", 450)
	seen := map[string]bool{}
	var keys []string
	for len(keys) < 300 {
		var sb strings.Builder
		for range 1 + rng.IntN(8) {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		if rng.IntN(5) == 0 {
			sb.WriteString(long[:150+rng.IntN(300)])
			sb.WriteString(alphabet[rng.IntN(len(alphabet)-1)])
		}
		k := sb.String()
		if pluginapi.ValidateKey(k) != nil || seen[k] {
			continue
		}
		seen[k] = true
		keys = append(keys, k)
		_, err := put(ctx, b, k, []byte(k))
		require.NoError(t, err, k)
	}
	sort.Strings(keys)
	require.Equal(t, keys, listKeys(t, b, pluginapi.ListRequest{PageSize: 7}))
	for _, i := range []int{0, 17, 150, 298} {
		require.Equal(t, keys[i+1:], listKeys(t, b, pluginapi.ListRequest{StartAfter: keys[i]}), "after %q", keys[i])
	}
	for _, p := range []string{"a", "a/", "a.", long[:10], "-"} {
		var want []string
		for _, k := range keys {
			if strings.HasPrefix(k, p) {
				want = append(want, k)
			}
		}
		require.Equal(t, want, listKeys(t, b, pluginapi.ListRequest{Prefix: p}), "prefix %q", p)
	}
}

// Puts and Deletes racing in one directory: Delete prunes directories
// that a Put is about to use; the Put must retry, never fail or vanish.
func TestConcurrentPutDeleteSameDirectory(t *testing.T) {
	b, _, _ := newFS(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				key := fmt.Sprintf("d/e/w%d-%d", w, i%3)
				if _, err := put(ctx, b, key, []byte(key)); err != nil {
					errs <- err
					return
				}
				if _, err := b.Head(ctx, key); err != nil {
					errs <- fmt.Errorf("Head right after Put: %w", err)
					return
				}
				if err := b.Delete(ctx, key); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Empty(t, listKeys(t, b, pluginapi.ListRequest{}))
}

func TestConfigureValidation(t *testing.T) {
	b := fs.New()
	ctx := t.Context()
	for _, cfg := range []map[string]string{{}, {"root": "relative"}, {"root": "/x", "bucket": "y"}} {
		_, err := b.Configure(ctx, pluginapi.ConfigureRequest{Config: cfg})
		require.ErrorIs(t, err, pluginapi.ErrInvalidConfig, "%v", cfg)
	}
	_, err := b.Head(ctx, "k")
	require.ErrorIs(t, err, pluginapi.ErrUnavailable, "an unconfigured backend")
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = b.Configure(ctx, pluginapi.ConfigureRequest{Config: map[string]string{"root": file}})
	require.ErrorIs(t, err, pluginapi.ErrInvalidConfig)
}
