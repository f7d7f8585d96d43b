package vfs

import (
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// BlockSize is the granularity at which MemFS tracks unsynced data and at
// which a simulated crash keeps or loses it.
const BlockSize = 4096

const sectorSize = 512

// MemFS is an in-memory file system that remembers what has been made
// durable. CrashClone returns the state a machine would find after losing
// power: everything synced, plus a random share of what was not.
//
// Durability follows POSIX as the engine is allowed to rely on it:
//   - file data and size are durable after File.Sync, File.Datasync or
//     Region.Sync of the range;
//   - directory entries (create, rename, remove, mkdir) are durable after
//     SyncDir of their directory; before that a crash keeps an in-order
//     prefix of them, so a rename is all or nothing;
//   - a file whose directory entry is not durable is lost, even if synced.
//
// Renames across directories are refused: their crash behaviour differs
// between file systems and the engine does not need them.
type MemFS struct {
	mu   sync.Mutex
	root *memNode
}

// NewMem returns an empty MemFS.
func NewMem() *MemFS { return &MemFS{root: newDirNode()} }

type memNode struct {
	isDir   bool
	modTime time.Time

	// Files.
	data   []byte   // live contents; len(data) is the size
	synced []byte   // durable contents; len(synced) is the durable size
	dirty  []uint64 // bitset of blocks where data may differ from synced
	maps   int      // live regions aliasing data

	// Directories.
	live    map[string]*memNode
	durable map[string]*memNode
	pending []dirOp // entry changes since the last SyncDir, oldest first
}

// dirOp is one atomic change to a directory's entries.
type dirOp []dirChange

type dirChange struct {
	name string
	node *memNode // nil removes the entry
}

func newDirNode() *memNode {
	return &memNode{isDir: true, live: map[string]*memNode{}, durable: map[string]*memNode{}, modTime: time.Now()}
}

func (n *memNode) apply(op dirOp) {
	for _, c := range op {
		if c.node == nil {
			delete(n.live, c.name)
		} else {
			n.live[c.name] = c.node
		}
	}
	n.pending = append(n.pending, op)
}

func splitPath(name string) []string {
	name = filepath.ToSlash(filepath.Clean(name))
	name = strings.TrimPrefix(name, "/")
	if name == "." || name == "" {
		return nil
	}
	return strings.Split(name, "/")
}

// walk resolves the directory holding name and the final element.
func (m *MemFS) walk(op, name string) (*memNode, string, error) {
	parts := splitPath(name)
	if len(parts) == 0 {
		return nil, "", &os.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	dir := m.root
	for _, p := range parts[:len(parts)-1] {
		next, ok := dir.live[p]
		if !ok {
			return nil, "", &os.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		if !next.isDir {
			return nil, "", &os.PathError{Op: op, Path: name, Err: fmt.Errorf("%s is not a directory", p)}
		}
		dir = next
	}
	return dir, parts[len(parts)-1], nil
}

func (m *MemFS) lookupDir(op, name string) (*memNode, error) {
	if len(splitPath(name)) == 0 {
		return m.root, nil
	}
	dir, base, err := m.walk(op, name)
	if err != nil {
		return nil, err
	}
	n, ok := dir.live[base]
	if !ok {
		return nil, &os.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	if !n.isDir {
		return nil, &os.PathError{Op: op, Path: name, Err: fmt.Errorf("not a directory")}
	}
	return n, nil
}

// Create implements FS.
func (m *MemFS) Create(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.walk("create", name)
	if err != nil {
		return nil, err
	}
	if _, ok := dir.live[base]; ok {
		return nil, &os.PathError{Op: "create", Path: name, Err: fs.ErrExist}
	}
	n := &memNode{modTime: time.Now()}
	dir.apply(dirOp{{base, n}})
	return &memFile{fs: m, node: n, name: name, writable: true}, nil
}

func (m *MemFS) open(op, name string, writable bool) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.walk(op, name)
	if err != nil {
		return nil, err
	}
	n, ok := dir.live[base]
	if !ok {
		return nil, &os.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	if n.isDir {
		return nil, &os.PathError{Op: op, Path: name, Err: fmt.Errorf("is a directory")}
	}
	return &memFile{fs: m, node: n, name: name, writable: writable}, nil
}

// Open implements FS.
func (m *MemFS) Open(name string) (File, error) { return m.open("open", name, false) }

// OpenReadWrite implements FS.
func (m *MemFS) OpenReadWrite(name string) (File, error) { return m.open("open", name, true) }

// Remove implements FS.
func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.walk("remove", name)
	if err != nil {
		return err
	}
	n, ok := dir.live[base]
	if !ok {
		return &os.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if n.isDir && len(n.live) > 0 {
		return &os.PathError{Op: "remove", Path: name, Err: fmt.Errorf("directory not empty")}
	}
	dir.apply(dirOp{{base, nil}})
	return nil
}

// Rename implements FS.
func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	odir, obase, err := m.walk("rename", oldname)
	if err != nil {
		return err
	}
	ndir, nbase, err := m.walk("rename", newname)
	if err != nil {
		return err
	}
	if odir != ndir {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: fmt.Errorf("memfs: cross-directory rename is not supported")}
	}
	n, ok := odir.live[obase]
	if !ok {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: fs.ErrNotExist}
	}
	if obase == nbase {
		return nil
	}
	if old, ok := odir.live[nbase]; ok && old.isDir != n.isDir {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: fs.ErrExist}
	}
	odir.apply(dirOp{{nbase, n}, {obase, nil}})
	return nil
}

// MkdirAll implements FS.
func (m *MemFS) MkdirAll(dir string, _ os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.root
	for _, p := range splitPath(dir) {
		next, ok := cur.live[p]
		if !ok {
			next = newDirNode()
			cur.apply(dirOp{{p, next}})
		} else if !next.isDir {
			return &os.PathError{Op: "mkdir", Path: dir, Err: fs.ErrExist}
		}
		cur = next
	}
	return nil
}

// SyncDir implements FS.
func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.lookupDir("syncdir", dir)
	if err != nil {
		return err
	}
	d.durable = make(map[string]*memNode, len(d.live))
	for k, v := range d.live {
		d.durable[k] = v
	}
	d.pending = nil
	return nil
}

// List implements FS.
func (m *MemFS) List(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.lookupDir("list", dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(d.live))
	for k := range d.live {
		names = append(names, k)
	}
	slices.Sort(names)
	return names, nil
}

// Stat implements FS.
func (m *MemFS) Stat(name string) (os.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n *memNode
	if len(splitPath(name)) == 0 {
		n = m.root
	} else {
		dir, base, err := m.walk("stat", name)
		if err != nil {
			return nil, err
		}
		var ok bool
		if n, ok = dir.live[base]; !ok {
			return nil, &os.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
		}
	}
	return memInfo{name: filepath.Base(name), size: int64(len(n.data)), dir: n.isDir, mod: n.modTime}, nil
}

type memInfo struct {
	name string
	size int64
	dir  bool
	mod  time.Time
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) ModTime() time.Time { return i.mod }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }
func (i memInfo) Mode() os.FileMode {
	if i.dir {
		return os.ModeDir | 0o755
	}
	return 0o644
}

// CrashOptions shapes what a simulated power loss keeps.
type CrashOptions struct {
	// Rand drives every choice; required.
	Rand *rand.Rand
	// KeepProb is the chance that each unsynced block, and each further
	// unsynced directory change, survives. Zero keeps nothing unsynced.
	KeepProb float64
	// Tear makes one surviving unsynced block a sector-level mix of its old
	// and new contents, as a torn write would.
	Tear bool
}

// CrashClone returns a new MemFS holding what would survive a power loss at
// this instant. The receiver is unchanged and can keep running (its state is
// simply no longer the one a recovery will see).
func (m *MemFS) CrashClone(o CrashOptions) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &crasher{o: o, nodes: map[*memNode]*memNode{}}
	out := &MemFS{root: c.dir(m.root)}
	if o.Tear && len(c.dirtyBlocks) > 0 {
		t := c.dirtyBlocks[o.Rand.IntN(len(c.dirtyBlocks))]
		for s := 0; s < BlockSize; s += sectorSize {
			lo := t.block*BlockSize + s
			if lo >= len(t.out.data) {
				break
			}
			hi := min(lo+sectorSize, len(t.out.data))
			src := t.old
			if o.Rand.IntN(2) == 0 {
				src = t.live
			}
			copy(t.out.data[lo:hi], paddedSlice(src, lo, hi))
			copy(t.out.synced[lo:hi], t.out.data[lo:hi])
		}
	}
	return out
}

type crasher struct {
	o           CrashOptions
	nodes       map[*memNode]*memNode
	dirtyBlocks []tornCandidate
}

type tornCandidate struct {
	out       *memNode
	old, live []byte
	block     int
}

func (c *crasher) keep() bool { return c.o.KeepProb > 0 && c.o.Rand.Float64() < c.o.KeepProb }

func (c *crasher) dir(d *memNode) *memNode {
	entries := make(map[string]*memNode, len(d.durable))
	for k, v := range d.durable {
		entries[k] = v
	}
	for _, op := range d.pending {
		if !c.keep() {
			break
		}
		for _, ch := range op {
			if ch.node == nil {
				delete(entries, ch.name)
			} else {
				entries[ch.name] = ch.node
			}
		}
	}
	out := newDirNode()
	for name, n := range entries {
		cn := c.node(n)
		out.live[name] = cn
		out.durable[name] = cn
	}
	return out
}

func (c *crasher) node(n *memNode) *memNode {
	if cn, ok := c.nodes[n]; ok {
		return cn
	}
	if n.isDir {
		cn := c.dir(n)
		c.nodes[n] = cn
		return cn
	}
	size := len(n.synced)
	if len(n.data) != size && c.keep() {
		size = len(n.data)
	}
	data := make([]byte, size)
	copy(data, n.synced)
	cn := &memNode{modTime: n.modTime, data: data}
	c.nodes[n] = cn
	for b := 0; b*BlockSize < size; b++ {
		if !bitSet(n.dirty, b) {
			continue
		}
		lo, hi := b*BlockSize, min((b+1)*BlockSize, size)
		if c.keep() {
			copy(data[lo:hi], paddedSlice(n.data, lo, hi))
		} else if lo < len(n.synced) {
			// Keep the old contents; zero what lies past the durable size.
			clear(data[min(hi, len(n.synced)):hi])
		} else {
			clear(data[lo:hi])
		}
		c.dirtyBlocks = append(c.dirtyBlocks, tornCandidate{out: cn, old: n.synced, live: n.data, block: b})
	}
	cn.synced = slices.Clone(data)
	return cn
}

// paddedSlice returns b[lo:hi], zero-extended where b is shorter.
func paddedSlice(b []byte, lo, hi int) []byte {
	out := make([]byte, hi-lo)
	if lo < len(b) {
		copy(out, b[lo:min(hi, len(b))])
	}
	return out
}

func bitSet(bits []uint64, i int) bool {
	return i/64 < len(bits) && bits[i/64]&(1<<(i%64)) != 0
}

func markDirty(n *memNode, off, length int64) {
	if length <= 0 {
		return
	}
	first, last := int(off/BlockSize), int((off+length-1)/BlockSize)
	for len(n.dirty)*64 <= last {
		n.dirty = append(n.dirty, 0)
	}
	for b := first; b <= last; b++ {
		n.dirty[b/64] |= 1 << (b % 64)
	}
}

// syncRange makes [off, off+length) of n durable, together with its size.
func syncRange(n *memNode, off, length int64) {
	if len(n.synced) != len(n.data) {
		grown := make([]byte, len(n.data))
		copy(grown, n.synced)
		if len(n.data) < len(n.synced) {
			grown = grown[:len(n.data)]
		}
		n.synced = grown
	}
	end := min(off+length, int64(len(n.data)))
	for b := int(off / BlockSize); int64(b)*BlockSize < end; b++ {
		if !bitSet(n.dirty, b) {
			continue
		}
		lo, hi := b*BlockSize, min((b+1)*BlockSize, len(n.data))
		copy(n.synced[lo:hi], n.data[lo:hi])
		n.dirty[b/64] &^= 1 << (b % 64)
	}
}

// resize sets the live size of n, zero-filling growth. Growing a mapped
// file past its capacity would detach existing regions, so it is refused.
func resize(n *memNode, size int64) error {
	old := int64(len(n.data))
	switch {
	case size <= old:
		clear(n.data[size:])
		markDirty(n, size, old-size)
		n.data = n.data[:size]
	case size <= int64(cap(n.data)):
		n.data = n.data[:size]
		clear(n.data[old:])
		markDirty(n, old, size-old)
	default:
		if n.maps > 0 {
			return fmt.Errorf("memfs: cannot grow a mapped file")
		}
		grown := make([]byte, size)
		copy(grown, n.data)
		n.data = grown
		markDirty(n, old, size-old)
	}
	n.modTime = time.Now()
	return nil
}

type memFile struct {
	fs       *MemFS
	node     *memNode
	name     string
	writable bool
	closed   bool
}

func (f *memFile) check(write bool) error {
	if f.closed {
		return ErrClosed
	}
	if write && !f.writable {
		return ErrReadOnly
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(false); err != nil {
		return 0, err
	}
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(true); err != nil {
		return 0, err
	}
	if end := off + int64(len(p)); end > int64(len(f.node.data)) {
		if err := resize(f.node, end); err != nil {
			return 0, err
		}
	}
	copy(f.node.data[off:], p)
	markDirty(f.node, off, int64(len(p)))
	f.node.modTime = time.Now()
	return len(p), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	f.closed = true
	return nil
}

func (f *memFile) Name() string { return f.name }

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(false); err != nil {
		return 0, err
	}
	return int64(len(f.node.data)), nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(false); err != nil {
		return err
	}
	syncRange(f.node, 0, int64(len(f.node.data)))
	return nil
}

func (f *memFile) Datasync() error { return f.Sync() }

func (f *memFile) Allocate(off, n int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(true); err != nil {
		return err
	}
	if end := off + n; end > int64(len(f.node.data)) {
		return resize(f.node, end)
	}
	return nil
}

// PunchHole checks that the range holds only zeros, as the contract asks;
// there are no blocks to give back.
func (f *memFile) PunchHole(off, n int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(true); err != nil {
		return err
	}
	data := f.node.data
	if off < 0 || n < 0 || off+n > int64(len(data)) {
		return fmt.Errorf("vfs: punch hole [%d, %d) outside %s (size %d)", off, off+n, f.name, len(data))
	}
	for _, c := range data[off : off+n] {
		if c != 0 {
			return fmt.Errorf("vfs: punch hole [%d, %d) of %s over data that is not zero", off, off+n, f.name)
		}
	}
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(true); err != nil {
		return err
	}
	return resize(f.node, size)
}

func (f *memFile) Map(off int64, length int, writable bool) (Region, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(writable); err != nil {
		return nil, err
	}
	if off < 0 || off+int64(length) > int64(len(f.node.data)) {
		return nil, &os.PathError{Op: "mmap", Path: f.name, Err: fmt.Errorf("range [%d,%d) outside file of %d bytes", off, off+int64(length), len(f.node.data))}
	}
	f.node.maps++
	return &memRegion{fs: f.fs, node: f.node, off: off, b: f.node.data[off : off+int64(length) : off+int64(length)], writable: writable}, nil
}

type memRegion struct {
	fs       *MemFS
	node     *memNode
	off      int64
	b        []byte
	writable bool
}

func (r *memRegion) Bytes() []byte { return r.b }

func (r *memRegion) WriteAt(p []byte, off int64) (int, error) {
	r.fs.mu.Lock()
	defer r.fs.mu.Unlock()
	if r.b == nil {
		return 0, ErrClosed
	}
	if !r.writable {
		return 0, ErrReadOnly
	}
	n := copy(r.b[off:], p)
	markDirty(r.node, r.off+off, int64(n))
	return n, nil
}

func (r *memRegion) Sync(off, n int64) error {
	r.fs.mu.Lock()
	defer r.fs.mu.Unlock()
	if r.b == nil {
		return ErrClosed
	}
	syncRange(r.node, r.off+off, min(n, int64(len(r.b))-off))
	return nil
}

func (r *memRegion) Populate() error { return nil }

func (r *memRegion) Close() error {
	r.fs.mu.Lock()
	defer r.fs.mu.Unlock()
	if r.b == nil {
		return ErrClosed
	}
	r.b = nil
	r.node.maps--
	return nil
}
