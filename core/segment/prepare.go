package segment

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Preparation says how a new segment file is made ready before its first
// record. The choice trades background work for append throughput and
// durable latency; docs/adr-write-path.md has the measurements.
type Preparation uint8

const (
	// PrepareSmallPages reserves the blocks with fallocate, writes zeros in
	// 4 KiB writes, syncs them and prefaults the mapping. The page cache then
	// holds 4 KiB pages whose blocks are already written, so an msync of one
	// small record writes one or two pages: the lowest durable latency, at
	// the price of the most background work.
	PrepareSmallPages Preparation = iota + 1
	// PrepareLargeFolios reserves the blocks with fallocate, writes zeros in
	// 1 MiB writes (the page cache builds large folios) and prefaults the
	// mapping. Cheapest to prepare and fastest to append into, but an msync
	// writes whole folios, so durable latency for small records is higher.
	PrepareLargeFolios
	// PrepareFallocate only reserves the blocks and prefaults the mapping;
	// each first write of a block converts an unwritten extent at sync time.
	PrepareFallocate
)

var preparationNames = map[Preparation]string{
	PrepareSmallPages:  "small-pages",
	PrepareLargeFolios: "large-folios",
	PrepareFallocate:   "fallocate",
}

func (p Preparation) String() string {
	if s, ok := preparationNames[p]; ok {
		return s
	}
	return fmt.Sprintf("preparation(%d)", p)
}

// ParsePreparation parses a Preparation name.
func ParsePreparation(s string) (Preparation, bool) {
	for p, n := range preparationNames {
		if n == s {
			return p, true
		}
	}
	return 0, false
}

// PrepSuffix marks a prepared but not yet activated segment file. Recovery
// deletes such files: they never held a record.
const PrepSuffix = ".seg.prep"

// PrepName returns the name of the prepared file for segment id.
func PrepName(id types.SegmentID) string { return fmt.Sprintf("%020d%s", id, PrepSuffix) }

// IsPrepName reports whether name is a prepared segment file.
func IsPrepName(name string) bool { return strings.HasSuffix(name, PrepSuffix) }

// Prepared is a segment file made ready for appends but not yet activated.
type Prepared struct {
	fs       vfs.FS
	path     string
	file     vfs.File
	region   vfs.Region
	capacity int64
	mode     WriteMode
}

// Prepare creates path with the given capacity and readies it. Running out
// of space is reported as types.ErrNoSpace, here and never later: the
// blocks are reserved before any record is written.
func Prepare(fsys vfs.FS, path string, capacity int64, prep Preparation, mode WriteMode) (_ *Prepared, err error) {
	if !ValidCapacity(capacity) {
		return nil, fmt.Errorf("prepare %s: capacity %d is not a power of two in [%d, %d]", path, capacity, MinFileCapacity, MaxCapacity)
	}
	_ = fsys.Remove(path) // a leftover from a crash
	f, err := fsys.Create(path)
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", path, noSpace(err))
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = fsys.Remove(path)
		}
	}()
	if err := f.Allocate(0, capacity); err != nil {
		return nil, fmt.Errorf("prepare %s: allocate %d bytes: %w", path, capacity, noSpace(err))
	}
	switch prep {
	case PrepareSmallPages, PrepareLargeFolios:
		bs := 4 << 10
		if prep == PrepareLargeFolios {
			bs = 1 << 20
		}
		if err := writeZeros(f, capacity, bs); err != nil {
			return nil, fmt.Errorf("prepare %s: %w", path, noSpace(err))
		}
		if prep == PrepareSmallPages {
			if err := f.Datasync(); err != nil {
				return nil, fmt.Errorf("prepare %s: sync zeros: %w", path, err)
			}
		}
	case PrepareFallocate:
	default:
		return nil, fmt.Errorf("prepare %s: unknown preparation %d", path, prep)
	}
	r, err := f.Map(0, int(capacity), mode == WriteMmap)
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", path, err)
	}
	if mode == WriteMmap {
		_ = r.Populate() // best effort: only a performance hint
	}
	return &Prepared{fs: fsys, path: path, file: f, region: r, capacity: capacity, mode: mode}, nil
}

func writeZeros(f vfs.File, size int64, bs int) error {
	zeros := make([]byte, bs)
	for off := int64(0); off < size; off += int64(bs) {
		if _, err := f.WriteAt(zeros[:min(int64(bs), size-off)], off); err != nil {
			return fmt.Errorf("zero fill at %d: %w", off, err)
		}
	}
	return nil
}

// noSpace marks ENOSPC errors with types.ErrNoSpace.
func noSpace(err error) error { return MarkNoSpace(err) }

// MarkNoSpace wraps err with types.ErrNoSpace when it is an ENOSPC.
func MarkNoSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) && !errors.Is(err, types.ErrNoSpace) {
		return fmt.Errorf("%w: %w", types.ErrNoSpace, err)
	}
	return err
}

// Capacity returns the prepared file's size.
func (p *Prepared) Capacity() int64 { return p.capacity }

// Discard closes and removes a prepared file that will not be used.
func (p *Prepared) Discard() error {
	err := p.region.Close()
	if cerr := p.file.Close(); err == nil {
		err = cerr
	}
	if rerr := p.fs.Remove(p.path); err == nil {
		err = rerr
	}
	return err
}

// Activate renames the prepared file to its final name in the same
// directory and writes the header. The rename and the header become durable
// with the first sync of the segment: the caller syncs the directory before
// acknowledging any record in it.
func (p *Prepared) Activate(h Header) (*Writer, error) {
	final := filepath.Join(filepath.Dir(p.path), FileName(h.SegmentID, h.BaseOffset, h.CreatedAt))
	w := &Writer{
		file: p.file, region: p.region, path: final, capacity: p.capacity, hdr: h, mode: p.mode,
		index: NewIndex(), end: HeaderSize,
	}
	// The header goes in before the rename: a file under a segment name
	// always carries its header (or, after a power loss, zeros), and a
	// failed write leaves a prepared file, which recovery deletes.
	var b [HeaderSize]byte
	h.Encode(b[:])
	if err := w.writeAt(b[:], 0); err != nil {
		return nil, fmt.Errorf("activate %s: write header: %w", final, err)
	}
	w.crcWritten(b[:], 0)
	if err := p.fs.Rename(p.path, final); err != nil {
		return nil, fmt.Errorf("activate %s: %w", final, err)
	}
	if p.mode == WritePwrite {
		w.bufStart = HeaderSize
	}
	return w, nil
}
