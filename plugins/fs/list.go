package fs

import (
	"context"
	"errors"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/aof2/aof2/pluginapi"
)

// List walks the object tree in key order. Siblings are visited by their
// key form (a directory "a" as "a/", an object "a" as "a"), which makes a
// depth-first walk produce byte-wise key order ("a.b" < "a/x" although
// "a" < "a.b"). A continuation directory "x" holds keys x+c... with c
// anything but '/', so it is visited in two passes around a sibling
// directory "x/": first its entries starting below '/', then the rest.
// Directories that cannot hold a key after StartAfter or under Prefix are
// not opened.
func (s *Backend) List(ctx context.Context, req pluginapi.ListRequest, page func([]pluginapi.ObjectInfo) error) error {
	if err := pluginapi.ValidatePrefix(req.Prefix); err != nil {
		return err
	}
	st, err := s.state()
	if err != nil {
		return err
	}
	size := int(req.PageSize)
	if size <= 0 {
		size = pluginapi.DefaultListPageSize
	}
	w := &lister{ctx: ctx, req: req, size: size, page: page}
	// Start in the deepest directory the prefix names completely.
	start, base := st.objects, ""
	if i := strings.LastIndexByte(req.Prefix, '/'); i >= 0 {
		base = req.Prefix[:i+1]
		chain, _, err := s.walk(base+"x", false)
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if err != nil {
			return fsError(req.Prefix, "list", err)
		}
		defer chain.close()
		start = chain.parent()
	}
	if err := w.dir(start, base); err != nil {
		return err
	}
	return w.flush()
}

type lister struct {
	ctx  context.Context
	req  pluginapi.ListRequest
	size int
	page func([]pluginapi.ObjectInfo) error
	buf  []pluginapi.ObjectInfo
}

type entryKind int

const (
	kindObject entryKind = iota
	kindDir
	kindContLow  // continuation entries starting below '/'
	kindContHigh // continuation entries starting above '/'
)

type entry struct {
	seg  string
	kind entryKind
	sort string
}

func (w *lister) dir(d *os.File, base string) error { return w.dirFiltered(d, base, 0, 0xff) }

// dirFiltered visits d's entries whose first byte lies in [lo, hi].
func (w *lister) dirFiltered(d *os.File, base string, lo, hi byte) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	dup, err := openDirAt(int(d.Fd()), ".")
	if err != nil {
		return fsError(base, "list", err)
	}
	names, err := dup.Readdirnames(-1)
	_ = dup.Close()
	if err != nil {
		return fsError(base, "list", err)
	}
	entries := make([]entry, 0, len(names))
	for _, n := range names {
		if n == "" || n[0] < lo || n[0] > hi {
			continue
		}
		switch {
		case strings.HasSuffix(n, dirSuffix):
			seg := strings.TrimSuffix(n, dirSuffix)
			entries = append(entries, entry{seg: seg, kind: kindDir, sort: seg + "/"})
		case strings.HasSuffix(n, objectSuffix):
			seg := strings.TrimSuffix(n, objectSuffix)
			entries = append(entries, entry{seg: seg, kind: kindObject, sort: seg})
		case strings.HasSuffix(n, contSuffix):
			seg := strings.TrimSuffix(n, contSuffix)
			entries = append(entries,
				entry{seg: seg, kind: kindContLow, sort: seg + "\x00"},
				entry{seg: seg, kind: kindContHigh, sort: seg + "0"})
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].sort < entries[j].sort })
	for _, e := range entries {
		key := base + e.seg
		switch e.kind {
		case kindDir:
			if err := w.subdir(d, e.seg+dirSuffix, key+"/", 0, 0xff); err != nil {
				return err
			}
			continue
		case kindContLow:
			if err := w.subdir(d, e.seg+contSuffix, key, 0, '/'-1); err != nil {
				return err
			}
			continue
		case kindContHigh:
			if err := w.subdir(d, e.seg+contSuffix, key, '/'+1, 0xff); err != nil {
				return err
			}
			continue
		}
		if !strings.HasPrefix(key, w.req.Prefix) || key <= w.req.StartAfter {
			continue
		}
		if err := w.object(d, e.seg, key); err != nil {
			return err
		}
	}
	return nil
}

// subdir visits the directory name in parent, whose keys all start with p.
func (w *lister) subdir(parent *os.File, name, p string, lo, hi byte) error {
	if !strings.HasPrefix(p, w.req.Prefix) && !strings.HasPrefix(w.req.Prefix, p) {
		return nil // no key under p has the prefix
	}
	if p < w.req.StartAfter && !strings.HasPrefix(w.req.StartAfter, p) {
		return nil // every key under p sorts before StartAfter
	}
	sub, err := openDirAt(int(parent.Fd()), name)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return nil // removed by a concurrent Delete, or not ours (a planted symlink)
	}
	if err != nil {
		return fsError(p, "list", err)
	}
	defer func() { _ = sub.Close() }()
	return w.dirFiltered(sub, p, lo, hi)
}

func (w *lister) object(d *os.File, seg, key string) error {
	h, err := readHeaderAt(d, seg+objectSuffix)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) {
		return nil // deleted since the directory was read, or a planted symlink
	}
	if err != nil {
		return fsError(key, "list", err)
	}
	w.buf = append(w.buf, h.info(key))
	if len(w.buf) >= w.size {
		return w.flush()
	}
	return nil
}

func (w *lister) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	out := w.buf
	w.buf = nil
	return w.page(out)
}
