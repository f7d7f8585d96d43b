package manifest

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/vfs"
)

// File names in the manifest directory.
const (
	chunkSuffix = ".mlog"
	tmpSuffix   = ".tmp"
)

func chunkName(index uint64) string    { return fmt.Sprintf("%020d%s", index, chunkSuffix) }
func chunkTmpName(index uint64) string { return chunkName(index) + tmpSuffix }

// parseChunkName parses <index:020>.mlog or <index:020>.mlog.tmp.
func parseChunkName(name string) (index uint64, tmp bool, ok bool) {
	base, tmp := strings.CutSuffix(name, tmpSuffix)
	base, ok = strings.CutSuffix(base, chunkSuffix)
	if !ok || len(base) != 20 {
		return 0, false, false
	}
	v, err := strconv.ParseUint(base, 10, 64)
	return v, tmp, err == nil
}

// dirListing classifies the entries of a manifest directory.
type dirListing struct {
	chunks    []uint64 // committed chunks (.mlog), ascending
	tmps      []uint64 // chunks never committed (.mlog.tmp), ascending
	snapshots []uint64 // snapshot ids, ascending
	junk      []string // leftovers of interrupted atomic writes (*.tmp)
	foreign   []string // anything else, left alone
}

func listManifest(fsys vfs.FS, mdir string) (dirListing, error) {
	var l dirListing
	names, err := fsys.List(mdir)
	if err != nil {
		if vfs.IsNotExist(err) {
			return l, nil
		}
		return l, fmt.Errorf("manifest: list %s: %w", mdir, err)
	}
	for _, n := range names { // List returns names sorted: indices are zero padded
		if idx, tmp, ok := parseChunkName(n); ok {
			if tmp {
				l.tmps = append(l.tmps, idx)
			} else {
				l.chunks = append(l.chunks, idx)
			}
		} else if id, ok := parseSnapshotName(n); ok {
			l.snapshots = append(l.snapshots, id)
		} else if strings.HasSuffix(n, tmpSuffix) {
			l.junk = append(l.junk, n)
		} else {
			l.foreign = append(l.foreign, n)
		}
	}
	return l, nil
}

// RecordInfo is one decoded record of a chunk.
type RecordInfo struct {
	Offset  int64      `json:"offset"`
	Ordinal uint64     `json:"ordinal"`
	Type    RecordType `json:"type"`
	Size    int64      `json:"size"`
	CRC     Hex64      `json:"crc"`
	Record  Record     `json:"record"`
}

// chunkRead is the result of reading and verifying one chunk file.
type chunkRead struct {
	name  string
	index uint64
	tmp   bool
	size  int64
	hdr   ChunkHeader
	hdrOK bool
	crcOK bool
	// records are the records that verified, in order, up to the first
	// bad one; walkEnd is the offset just past the last of them.
	records []RecordInfo
	walkEnd int64
	// err is the first problem found (nil for a clean chunk), errOff where.
	err    error
	errOff int64
	// tailLag is the extent of uncommitted bytes after committed_len (for a
	// .tmp chunk: after the header), when the tail was read.
	tailLag int64
}

// readChunkHeader reads only the header of a chunk file.
func readChunkHeader(fsys vfs.FS, path string) (ChunkHeader, int64, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return ChunkHeader{}, 0, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return ChunkHeader{}, 0, err
	}
	b := make([]byte, chunkHeaderLen)
	if _, err := f.ReadAt(b, 0); err != nil {
		if errors.Is(err, io.EOF) {
			return ChunkHeader{}, size, corruptf("chunk %s: %d bytes, shorter than its header", filepath.Base(path), size)
		}
		return ChunkHeader{}, size, err
	}
	h, err := decodeChunkHeader(b)
	return h, size, err
}

// readChunk reads a chunk file, verifies its header, chunk CRC and every
// record, and decodes the records. I/O errors are returned; damage is
// reported in chunkRead.err. With readTail the bytes past committed_len are
// read too, to measure what a crashed commit left there.
func readChunk(fsys vfs.FS, mdir string, index uint64, tmp, readTail bool) (*chunkRead, error) {
	cr := &chunkRead{index: index, tmp: tmp, name: chunkName(index)}
	if tmp {
		cr.name = chunkTmpName(index)
	}
	f, err := fsys.Open(filepath.Join(mdir, cr.name))
	if err != nil {
		return nil, fmt.Errorf("manifest: open %s: %w", cr.name, err)
	}
	defer f.Close()
	if cr.size, err = f.Size(); err != nil {
		return nil, fmt.Errorf("manifest: size of %s: %w", cr.name, err)
	}
	// A chunk never exceeds the largest capacity; read no more than that.
	n := min(cr.size, MaxChunkCapacity)
	if n < chunkHeaderLen {
		cr.err = corruptf("%d bytes, shorter than the chunk header", cr.size)
		return cr, nil
	}
	hb := make([]byte, chunkHeaderLen)
	if _, err := f.ReadAt(hb, 0); err != nil {
		return nil, fmt.Errorf("manifest: read %s: %w", cr.name, err)
	}
	cr.hdr, cr.err = decodeChunkHeader(hb)
	switch {
	case cr.err != nil:
	case cr.hdr.Index != index:
		cr.err = corruptf("header chunk_index %d in file %s", cr.hdr.Index, cr.name)
	case int64(cr.hdr.CommittedLen) > cr.size:
		cr.err = corruptf("committed_len %d beyond the file's %d bytes", cr.hdr.CommittedLen, cr.size)
	}
	if cr.err != nil {
		if tmp {
			// An uncommitted chunk: measure what is there, nothing more.
			buf := make([]byte, n)
			if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("manifest: read %s: %w", cr.name, err)
			}
			cr.tailLag = tailExtent(buf[chunkHeaderLen:])
		}
		return cr, nil
	}
	cr.hdrOK = true
	committed := int64(cr.hdr.CommittedLen)
	if readTail || tmp {
		n = max(n, committed)
	} else {
		n = committed
	}
	buf := make([]byte, n)
	copy(buf, hb)
	if n > chunkHeaderLen {
		if _, err := f.ReadAt(buf[chunkHeaderLen:], chunkHeaderLen); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("manifest: read %s: %w", cr.name, err)
		}
	}
	if tmp {
		cr.tailLag = tailExtent(buf[chunkHeaderLen:])
		return cr, nil
	}
	if readTail {
		cr.tailLag = tailExtent(buf[committed:])
	}
	body := buf[:committed]
	cr.crcOK = Hex64(checksum.Sum64(body[chunkHeaderLen:])) == cr.hdr.CRC64
	cr.walk(body)
	if !cr.crcOK && cr.err == nil {
		cr.err = corruptf("chunk_crc64 %s does not match the committed bytes (every record verified)", cr.hdr.CRC64)
		cr.errOff = 0
	} else if !cr.crcOK {
		cr.err = fmt.Errorf("chunk_crc64 mismatch; first bad record: %w", cr.err)
	}
	return cr, nil
}

// walk decodes the records of body = [0, committed_len), stopping at the
// first that does not verify.
func (cr *chunkRead) walk(body []byte) {
	off, last := int64(chunkHeaderLen), int64(chunkHeaderLen)
	ord := cr.hdr.BaseRecord
	cr.records = make([]RecordInfo, 0, countFrames(body[chunkHeaderLen:]))
	for off < int64(len(body)) {
		rec, size, err := decodeRecord(body[off:])
		if err != nil {
			cr.err, cr.errOff = err, off
			break
		}
		cr.records = append(cr.records, RecordInfo{
			Offset: off, Ordinal: ord, Type: rec.Type(), Size: size,
			CRC: Hex64(le.Uint64(body[off+32:])), Record: rec,
		})
		ord++
		last, off = off, off+size
	}
	cr.walkEnd = off
	if cr.err == nil && uint64(last) != cr.hdr.TailOffset {
		cr.err, cr.errOff = corruptf("tail_offset %d, last record at %d", cr.hdr.TailOffset, last), 32
	}
}

// countFrames counts the frames a walk of b would visit, from their
// lengths alone, to size the walk's result in one allocation.
func countFrames(b []byte) int {
	n := 0
	for off := int64(0); int64(len(b))-off >= recordHeaderLen; n++ {
		l := int64(le.Uint32(b[off+4:]))
		if l == 0 {
			break
		}
		off += frameSize(int(l))
	}
	return n
}
