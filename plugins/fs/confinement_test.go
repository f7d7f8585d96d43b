package fs_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/fs"
)

// newFS returns a configured backend on a fresh root, and a sibling
// directory "outside" that nothing may ever touch.
func newFS(t *testing.T) (*fs.Backend, string, string) {
	t.Helper()
	base := t.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	require.NoError(t, os.MkdirAll(outside, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret.o"), []byte("secret"), 0o644))
	b := fs.New()
	_, err := b.Configure(context.Background(), pluginapi.ConfigureRequest{Config: map[string]string{"root": root}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b, root, outside
}

func put(ctx context.Context, b pluginapi.Backend, key string, data []byte) (pluginapi.ObjectInfo, error) {
	return b.Put(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}, bytes.NewReader(data))
}

func requireOutsideUntouched(t *testing.T, outside string) {
	t.Helper()
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Len(t, entries, 1, "something was created outside the root")
	data, err := os.ReadFile(filepath.Join(outside, "secret.o"))
	require.NoError(t, err)
	require.Equal(t, "secret", string(data))
}

func TestConfinementRejectsEscapingKeys(t *testing.T) {
	b, _, outside := newFS(t)
	ctx := t.Context()
	for _, key := range []string{"../outside/secret", "/abs/path", "a/../../outside/secret", "..", "a/./b", "a\x00b", "a//b", `..\outside`} {
		_, err := put(ctx, b, key, []byte("x"))
		require.ErrorIs(t, err, pluginapi.ErrInvalidKey, "Put %q", key)
		_, err = b.Head(ctx, key)
		require.ErrorIs(t, err, pluginapi.ErrInvalidKey, "Head %q", key)
		require.ErrorIs(t, b.Delete(ctx, key), pluginapi.ErrInvalidKey, "Delete %q", key)
	}
	requireOutsideUntouched(t, outside)
}

// URL-encoded and look-alike names are ordinary names, stored literally.
func TestConfinementEncodedNamesAreLiteral(t *testing.T) {
	b, root, outside := newFS(t)
	ctx := t.Context()
	for _, key := range []string{"%2e%2e/%2e%2e/outside/secret", "..%2f..%2foutside", "%2F/etc", "...", "..../x", "．．/fullwidth"} {
		_, err := put(ctx, b, key, []byte(key))
		require.NoError(t, err, key)
		_, rc, err := b.Get(ctx, pluginapi.GetRequest{Key: key})
		require.NoError(t, err, key)
		got, _ := io.ReadAll(rc)
		_ = rc.Close()
		require.Equal(t, key, string(got))
	}
	requireOutsideUntouched(t, outside)
	// And they all live under root/objects.
	var files []string
	require.NoError(t, filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			files = append(files, p)
		}
		return err
	}))
	require.Len(t, files, 6)
	for _, f := range files {
		require.True(t, strings.HasPrefix(f, filepath.Join(root, "objects")+"/"), f)
	}
}

// A symlink planted inside the root, as a directory or as an object,
// never leads a read or a write outside.
func TestConfinementSymlinksInsideRoot(t *testing.T) {
	b, root, outside := newFS(t)
	ctx := t.Context()
	objects := filepath.Join(root, "objects")
	require.NoError(t, os.Symlink(outside, filepath.Join(objects, "evil.d")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret.o"), filepath.Join(objects, "link.o")))

	// Through a symlinked directory: refused both ways.
	_, err := b.Head(ctx, "evil/secret")
	require.ErrorIs(t, err, pluginapi.ErrPermission)
	_, _, err = b.Get(ctx, pluginapi.GetRequest{Key: "evil/secret"})
	require.ErrorIs(t, err, pluginapi.ErrPermission)
	_, err = put(ctx, b, "evil/new", []byte("escape"))
	require.ErrorIs(t, err, pluginapi.ErrPermission)
	require.ErrorIs(t, b.Delete(ctx, "evil/secret"), pluginapi.ErrPermission)

	// A symlinked object is not followed for reading...
	_, err = b.Head(ctx, "link")
	require.ErrorIs(t, err, pluginapi.ErrPermission)
	_, err = b.GetFile(ctx, pluginapi.GetRequest{Key: "link"}, filepath.Join(t.TempDir(), "out"))
	require.ErrorIs(t, err, pluginapi.ErrPermission)
	// ...and a write replaces the link itself, not its target.
	_, err = put(ctx, b, "link", []byte("replaced"))
	require.NoError(t, err)
	fi, err := os.Lstat(filepath.Join(objects, "link.o"))
	require.NoError(t, err)
	require.True(t, fi.Mode().IsRegular())
	requireOutsideUntouched(t, outside)

	// Listing does not descend into the symlinked directory.
	var keys []string
	require.NoError(t, b.List(ctx, pluginapi.ListRequest{}, func(p []pluginapi.ObjectInfo) error {
		for _, o := range p {
			keys = append(keys, o.Key)
		}
		return nil
	}))
	require.Equal(t, []string{"link"}, keys)
}

// PutFile and GetFile never follow a symlink at the host's path either.
func TestConfinementLocalFileSymlinks(t *testing.T) {
	b, _, outside := newFS(t)
	ctx := t.Context()
	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret.o"), link))
	_, err := b.PutFile(ctx, pluginapi.PutRequest{Key: "k", Size: 6, CRC64: pluginapi.CRC64([]byte("secret"))}, link)
	require.ErrorIs(t, err, pluginapi.ErrInvalidArgument)
	_, err = put(ctx, b, "k", []byte("payload"))
	require.NoError(t, err)
	_, err = b.GetFile(ctx, pluginapi.GetRequest{Key: "k"}, link)
	require.ErrorIs(t, err, pluginapi.ErrInvalidArgument)
	requireOutsideUntouched(t, outside)
}
