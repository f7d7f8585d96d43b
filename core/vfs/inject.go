package vfs

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// OpKind names a file-system operation that can fail.
type OpKind uint8

// Operation kinds seen by an Injector.
const (
	OpCreate OpKind = iota + 1
	OpOpen
	OpRemove
	OpRename
	OpMkdir
	OpSyncDir
	OpList
	OpStat
	OpRead
	OpWrite
	OpSync     // File.Sync and File.Datasync
	OpAllocate // File.Allocate
	OpTruncate
	OpMap
	OpMsync // Region.Sync
	OpClose
	OpPunch // File.PunchHole
)

var opNames = [...]string{"", "create", "open", "remove", "rename", "mkdir", "syncdir", "list", "stat",
	"read", "write", "sync", "allocate", "truncate", "map", "msync", "close", "punch"}

func (k OpKind) String() string {
	if int(k) < len(opNames) {
		return opNames[k]
	}
	return fmt.Sprintf("op(%d)", k)
}

// Op describes one operation about to run.
type Op struct {
	Index uint64 // 0-based sequence number of the operation on this FS
	Kind  OpKind
	Path  string
	Off   int64
	Len   int
}

func (o Op) String() string {
	return fmt.Sprintf("#%d %s %s@%d+%d", o.Index, o.Kind, o.Path, o.Off, o.Len)
}

// Fault is what an Injector makes of an operation.
type Fault uint8

// Faults. Each is meaningful for the operations named.
const (
	NoFault         Fault = iota
	FaultEIO              // any operation fails with EIO
	FaultNoSpace          // any operation fails with ENOSPC
	FaultShortWrite       // OpWrite writes half of the bytes, then fails with EIO
	FaultBitFlip          // OpRead / read-only OpMap succeed with one bit flipped
)

var faultNames = [...]string{"none", "EIO", "ENOSPC", "short-write", "bit-flip"}

func (f Fault) String() string {
	if int(f) < len(faultNames) {
		return faultNames[f]
	}
	return fmt.Sprintf("fault(%d)", f)
}

// Injector decides the fault, if any, for each operation.
type Injector interface {
	Inject(op Op) Fault
}

// InjectorFunc adapts a function to Injector.
type InjectorFunc func(op Op) Fault

// Inject implements Injector.
func (f InjectorFunc) Inject(op Op) Fault { return f(op) }

// OnIndex injects fault at the operation with the given index; with
// persistent, also at every later operation that pred accepts (pred nil
// accepts all). OnIndex and OnMatch take where, then what, then for how
// long.
func OnIndex(index uint64, pred func(Op) bool, fault Fault, persistent bool) Injector {
	return InjectorFunc(func(op Op) Fault {
		if op.Index == index || (persistent && op.Index > index && (pred == nil || pred(op))) {
			return fault
		}
		return NoFault
	})
}

// OnMatch injects fault at the nth (0-based) operation accepted by pred;
// with persistent, also at every later accepted one.
func OnMatch(n int, pred func(Op) bool, fault Fault, persistent bool) Injector {
	var seen atomic.Int64
	return InjectorFunc(func(op Op) Fault {
		if !pred(op) {
			return NoFault
		}
		i := seen.Add(1) - 1
		if i == int64(n) || (persistent && i > int64(n)) {
			return fault
		}
		return NoFault
	})
}

// BitChooser is an Injector that also picks the bit a FaultBitFlip flips,
// for tests that walk every bit of a structure; without it the bit is
// derived from the operation's index.
type BitChooser interface {
	Injector
	// ChooseBit returns the bit to flip among the bits of the bytes op read.
	ChooseBit(op Op, bits uint64) uint64
}

// FlipBitAt flips the given bit (taken modulo the bits read) of the first
// read accepted by pred, once.
func FlipBitAt(pred func(Op) bool, bit uint64) BitChooser {
	return &bitAt{pred: pred, bit: bit}
}

type bitAt struct {
	pred func(Op) bool
	bit  uint64
	done atomic.Bool
}

func (b *bitAt) Inject(op Op) Fault {
	if (op.Kind == OpRead || op.Kind == OpMap) && b.pred(op) && b.done.CompareAndSwap(false, true) {
		return FaultBitFlip
	}
	return NoFault
}

func (b *bitAt) ChooseBit(_ Op, bits uint64) uint64 { return b.bit % bits }

// Kinds returns a predicate accepting operations of the given kinds.
func Kinds(kinds ...OpKind) func(Op) bool {
	return func(op Op) bool {
		for _, k := range kinds {
			if op.Kind == k {
				return true
			}
		}
		return false
	}
}

// InjectFS wraps an FS, numbering every operation and consulting an Injector
// before running it. The injector can be swapped while in use.
type InjectFS struct {
	fs    FS
	count atomic.Uint64
	mu    sync.RWMutex
	inj   Injector
}

// Wrap returns fs with faults injected by inj (nil injects nothing).
func Wrap(fs FS, inj Injector) *InjectFS { return &InjectFS{fs: fs, inj: inj} }

// OnOS reports whether fsys names real files of the operating system (OS,
// or a wrapper over it): another process, such as a plugin, can then read
// and write them by path.
func OnOS(fsys FS) bool {
	for {
		switch f := fsys.(type) {
		case osFS:
			return true
		case *InjectFS:
			fsys = f.fs
		default:
			return false
		}
	}
}

// SetInjector replaces the injector (nil injects nothing).
func (w *InjectFS) SetInjector(inj Injector) {
	w.mu.Lock()
	w.inj = inj
	w.mu.Unlock()
}

// Ops returns how many operations have been issued so far.
func (w *InjectFS) Ops() uint64 { return w.count.Load() }

func (w *InjectFS) decide(kind OpKind, path string, off int64, n int) (Op, Fault) {
	op := Op{Index: w.count.Add(1) - 1, Kind: kind, Path: path, Off: off, Len: n}
	w.mu.RLock()
	inj := w.inj
	w.mu.RUnlock()
	if inj == nil {
		return op, NoFault
	}
	return op, inj.Inject(op)
}

// errFor turns a fault into the error the operation returns, or nil.
func errFor(op Op, f Fault) error {
	var errno syscall.Errno
	switch f {
	case FaultEIO, FaultShortWrite:
		errno = syscall.EIO
	case FaultNoSpace:
		errno = syscall.ENOSPC
	default:
		return nil
	}
	return &os.PathError{Op: op.Kind.String(), Path: op.Path, Err: fmt.Errorf("injected at %s: %w", op, errno)}
}

func (w *InjectFS) simple(kind OpKind, path string) error {
	op, f := w.decide(kind, path, 0, 0)
	return errFor(op, f)
}

// Create implements FS.
func (w *InjectFS) Create(name string) (File, error) {
	if err := w.simple(OpCreate, name); err != nil {
		return nil, err
	}
	f, err := w.fs.Create(name)
	if err != nil {
		return nil, err
	}
	return &injectFile{w: w, f: f}, nil
}

// Open implements FS.
func (w *InjectFS) Open(name string) (File, error) {
	if err := w.simple(OpOpen, name); err != nil {
		return nil, err
	}
	f, err := w.fs.Open(name)
	if err != nil {
		return nil, err
	}
	return &injectFile{w: w, f: f}, nil
}

// OpenReadWrite implements FS.
func (w *InjectFS) OpenReadWrite(name string) (File, error) {
	if err := w.simple(OpOpen, name); err != nil {
		return nil, err
	}
	f, err := w.fs.OpenReadWrite(name)
	if err != nil {
		return nil, err
	}
	return &injectFile{w: w, f: f}, nil
}

// Remove implements FS.
func (w *InjectFS) Remove(name string) error {
	if err := w.simple(OpRemove, name); err != nil {
		return err
	}
	return w.fs.Remove(name)
}

// Rename implements FS.
func (w *InjectFS) Rename(oldname, newname string) error {
	if err := w.simple(OpRename, oldname); err != nil {
		return err
	}
	return w.fs.Rename(oldname, newname)
}

// MkdirAll implements FS.
func (w *InjectFS) MkdirAll(dir string, perm os.FileMode) error {
	if err := w.simple(OpMkdir, dir); err != nil {
		return err
	}
	return w.fs.MkdirAll(dir, perm)
}

// SyncDir implements FS.
func (w *InjectFS) SyncDir(dir string) error {
	if err := w.simple(OpSyncDir, dir); err != nil {
		return err
	}
	return w.fs.SyncDir(dir)
}

// List implements FS.
func (w *InjectFS) List(dir string) ([]string, error) {
	if err := w.simple(OpList, dir); err != nil {
		return nil, err
	}
	return w.fs.List(dir)
}

// Stat implements FS.
func (w *InjectFS) Stat(name string) (os.FileInfo, error) {
	if err := w.simple(OpStat, name); err != nil {
		return nil, err
	}
	return w.fs.Stat(name)
}

type injectFile struct {
	w *InjectFS
	f File
}

func (i *injectFile) ReadAt(p []byte, off int64) (int, error) {
	op, fault := i.w.decide(OpRead, i.f.Name(), off, len(p))
	if err := errFor(op, fault); err != nil {
		return 0, err
	}
	n, err := i.f.ReadAt(p, off)
	if fault == FaultBitFlip && n > 0 {
		i.w.flipBit(p[:n], op)
	}
	return n, err
}

func (i *injectFile) WriteAt(p []byte, off int64) (int, error) {
	op, fault := i.w.decide(OpWrite, i.f.Name(), off, len(p))
	if fault == FaultShortWrite {
		n, _ := i.f.WriteAt(p[:len(p)/2], off)
		return n, errFor(op, fault)
	}
	if err := errFor(op, fault); err != nil {
		return 0, err
	}
	return i.f.WriteAt(p, off)
}

func (i *injectFile) Close() error {
	op, fault := i.w.decide(OpClose, i.f.Name(), 0, 0)
	err := i.f.Close()
	if ferr := errFor(op, fault); ferr != nil {
		return ferr
	}
	return err
}

func (i *injectFile) Name() string         { return i.f.Name() }
func (i *injectFile) Size() (int64, error) { return i.f.Size() }

func (i *injectFile) Sync() error {
	if err := i.w.simple(OpSync, i.f.Name()); err != nil {
		return err
	}
	return i.f.Sync()
}

func (i *injectFile) Datasync() error {
	if err := i.w.simple(OpSync, i.f.Name()); err != nil {
		return err
	}
	return i.f.Datasync()
}

func (i *injectFile) Allocate(off, n int64) error {
	op, fault := i.w.decide(OpAllocate, i.f.Name(), off, int(n))
	if err := errFor(op, fault); err != nil {
		return err
	}
	return i.f.Allocate(off, n)
}

func (i *injectFile) PunchHole(off, n int64) error {
	op, fault := i.w.decide(OpPunch, i.f.Name(), off, int(n))
	if err := errFor(op, fault); err != nil {
		return err
	}
	return i.f.PunchHole(off, n)
}

func (i *injectFile) Truncate(size int64) error {
	op, fault := i.w.decide(OpTruncate, i.f.Name(), size, 0)
	if err := errFor(op, fault); err != nil {
		return err
	}
	return i.f.Truncate(size)
}

func (i *injectFile) Map(off int64, length int, writable bool) (Region, error) {
	op, fault := i.w.decide(OpMap, i.f.Name(), off, length)
	if err := errFor(op, fault); err != nil {
		return nil, err
	}
	r, err := i.f.Map(off, length, writable)
	if err != nil {
		return nil, err
	}
	if fault == FaultBitFlip && !writable && length > 0 {
		// A flipped bit in a read-only map: hand out a private copy.
		flipped := append([]byte(nil), r.Bytes()...)
		i.w.flipBit(flipped, op)
		return &copyRegion{Region: r, b: flipped}, nil
	}
	return &injectRegion{w: i.w, r: r, name: i.f.Name()}, nil
}

// flipBit flips one bit of p: the injector's choice when it is a
// BitChooser, else one derived from the operation's index.
func (w *InjectFS) flipBit(p []byte, op Op) {
	bits := uint64(len(p) * 8)
	w.mu.RLock()
	c, ok := w.inj.(BitChooser)
	w.mu.RUnlock()
	var bit uint64
	if ok {
		bit = c.ChooseBit(op, bits) % bits
	} else {
		x := op.Index*0x9e3779b97f4a7c15 + 1
		x ^= x >> 31
		bit = x % bits
	}
	p[bit/8] ^= 1 << (bit % 8)
}

type injectRegion struct {
	w    *InjectFS
	r    Region
	name string
}

func (r *injectRegion) Bytes() []byte                            { return r.r.Bytes() }
func (r *injectRegion) WriteAt(p []byte, off int64) (int, error) { return r.r.WriteAt(p, off) }
func (r *injectRegion) Populate() error                          { return r.r.Populate() }
func (r *injectRegion) Close() error                             { return r.r.Close() }

func (r *injectRegion) Sync(off, n int64) error {
	op, fault := r.w.decide(OpMsync, r.name, off, int(n))
	if err := errFor(op, fault); err != nil {
		return err
	}
	return r.r.Sync(off, n)
}

type copyRegion struct {
	Region
	b []byte
}

func (c *copyRegion) Bytes() []byte { return c.b }

var _ io.ReaderAt = (*injectFile)(nil)
