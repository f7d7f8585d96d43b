package manifest

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/vfs"
)

// pendingChunk holds records appended to one chunk and not yet committed.
// A Log's pending list has one entry per chunk the uncommitted records
// span; the first continues the chunk on disk (or a chunk not yet created).
type pendingChunk struct {
	index      uint64
	baseRecord uint64 // ordinal of the chunk's first record
	start      int64  // chunk offset of buf[0]: the chunk's committed_len
	buf        []byte // encoded record frames
	recs       []Record
	lastOff    int64 // offset of the last frame in buf
	seal       bool  // seal the chunk once buf is durable
}

func (p *pendingChunk) end() int64 { return p.start + int64(len(p.buf)) }

// chunkWriter owns the file of the active chunk. Only the goroutine that
// holds the Log's commit token uses it.
type chunkWriter struct {
	fs       vfs.FS
	mdir     string
	capacity int64
	f        vfs.File    // open active chunk; nil between a seal and the next chunk
	hdr      ChunkHeader // header as last written
	named    bool        // renamed from .mlog.tmp to .mlog
}

// create starts chunk index as <index>.mlog.tmp, preallocated to the
// chunk capacity so that commits never need new blocks, with an empty
// header. The file needs no fsync yet: until its first commit renames it,
// replay discards it.
func (w *chunkWriter) create(index, baseRecord uint64) error {
	tmp := filepath.Join(w.mdir, chunkTmpName(index))
	if err := w.fs.Remove(tmp); err != nil && !vfs.IsNotExist(err) {
		return err
	}
	f, err := w.fs.Create(tmp)
	if err != nil {
		return err
	}
	hdr := ChunkHeader{Index: index, BaseRecord: baseRecord, TailOffset: chunkHeaderLen, CommittedLen: chunkHeaderLen}
	if err = f.Allocate(0, w.capacity); err == nil {
		_, err = f.WriteAt(hdr.marshal(), 0)
	}
	if err != nil {
		_ = f.Close()
		_ = w.fs.Remove(tmp)
		return err
	}
	w.f, w.hdr, w.named = f, hdr, false
	return nil
}

// write makes the records of pc durable, in this order:
//
//  1. create the chunk file if pc starts a new chunk;
//  2. write the record frames past committed_len and fdatasync them;
//  3. if sealing, truncate the file to its committed length;
//  4. rewrite the header (tail_offset, committed_len, chunk_crc64, flags)
//     and fdatasync (fsync when sealing: the size changed);
//  5. on the chunk's first commit, rename .mlog.tmp to .mlog and fsync the
//     directory.
//
// A crash before step 4 is durable leaves the old header: the new frames
// lie past committed_len and replay trims them. Only after step 5 (or step
// 4 for an already named chunk) are the records committed. On a chunk's
// first commit step 2 does not sync: replay discards a .mlog.tmp, so until
// step 5 renames it nothing depends on which of its writes reached the
// disk, and step 4's sync covers frames and header alike (one fdatasync
// fewer for every new chunk). Any error is fatal for the Log (fail-stop):
// the caller never retries.
//
// It returns the meta of the chunk after the write, and whether it sealed.
func (w *chunkWriter) write(pc *pendingChunk) (chunkMeta, bool, error) {
	if w.f == nil {
		if pc.start != chunkHeaderLen {
			return chunkMeta{}, false, fmt.Errorf("manifest: internal: chunk %d continues at %d with no open file", pc.index, pc.start)
		}
		if len(pc.buf) == 0 {
			return chunkMeta{}, false, nil // nothing to write, nothing to seal
		}
		if err := w.create(pc.index, pc.baseRecord); err != nil {
			return chunkMeta{}, false, fmt.Errorf("create chunk %d: %w", pc.index, err)
		}
	} else if w.hdr.Index != pc.index || int64(w.hdr.CommittedLen) != pc.start {
		return chunkMeta{}, false, fmt.Errorf("manifest: internal: pending chunk %d@%d does not continue chunk %d@%d",
			pc.index, pc.start, w.hdr.Index, w.hdr.CommittedLen)
	}
	name := chunkName(pc.index)
	if len(pc.buf) > 0 {
		if _, err := w.f.WriteAt(pc.buf, pc.start); err != nil {
			return chunkMeta{}, false, fmt.Errorf("write %s: %w", name, err)
		}
		if w.named {
			if err := w.f.Datasync(); err != nil {
				return chunkMeta{}, false, fmt.Errorf("sync %s: %w", name, err)
			}
		}
		w.hdr.CRC64 = Hex64(checksum.Update(uint64(w.hdr.CRC64), pc.buf))
		w.hdr.CommittedLen = uint64(pc.end())
		w.hdr.TailOffset = uint64(pc.lastOff)
	} else if !pc.seal {
		return w.meta(), false, nil
	}
	if pc.seal {
		if w.hdr.CommittedLen == chunkHeaderLen {
			// Never held a committed record: drop it instead of sealing.
			err := errors.Join(w.f.Close(), w.fs.Remove(filepath.Join(w.mdir, chunkTmpName(pc.index))))
			w.f = nil
			return chunkMeta{}, false, err
		}
		if err := w.f.Truncate(int64(w.hdr.CommittedLen)); err != nil {
			return chunkMeta{}, false, fmt.Errorf("truncate %s: %w", name, err)
		}
		w.hdr.Flags |= FlagSealed
	}
	if _, err := w.f.WriteAt(w.hdr.marshal(), 0); err != nil {
		return chunkMeta{}, false, fmt.Errorf("write header of %s: %w", name, err)
	}
	sync := w.f.Datasync
	if pc.seal {
		sync = w.f.Sync
	}
	if err := sync(); err != nil {
		return chunkMeta{}, false, fmt.Errorf("sync header of %s: %w", name, err)
	}
	if !w.named {
		if err := w.fs.Rename(filepath.Join(w.mdir, chunkTmpName(pc.index)), filepath.Join(w.mdir, name)); err != nil {
			return chunkMeta{}, false, fmt.Errorf("rename %s: %w", name, err)
		}
		if err := w.fs.SyncDir(w.mdir); err != nil {
			return chunkMeta{}, false, fmt.Errorf("sync dir %s: %w", w.mdir, err)
		}
		w.named = true
	}
	m := w.meta()
	if pc.seal {
		err := w.f.Close()
		w.f = nil
		if err != nil {
			return m, true, fmt.Errorf("close %s: %w", name, err)
		}
	}
	return m, pc.seal, nil
}

func (w *chunkWriter) meta() chunkMeta {
	return chunkMeta{hdr: w.hdr, size: int64(w.hdr.CommittedLen), named: w.named}
}

// close releases the active chunk's file, if any.
func (w *chunkWriter) close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// chunkMeta is what a Log remembers of a chunk file.
type chunkMeta struct {
	hdr     ChunkHeader
	size    int64
	named   bool // a committed .mlog file (always true for listed chunks)
	corrupt bool // replay found damage: never deleted by retention
}

// sealInPlace trims a chunk found unsealed at Open (the previous process
// stopped while it was active) to its committed length and seals it, so
// that the bytes of a crashed commit can never be mistaken for records and
// the chunk becomes uploadable.
func sealInPlace(fsys vfs.FS, path string, hdr ChunkHeader) (ChunkHeader, error) {
	f, err := fsys.OpenReadWrite(path)
	if err != nil {
		return hdr, err
	}
	hdr.Flags |= FlagSealed
	if err = f.Truncate(int64(hdr.CommittedLen)); err == nil {
		if _, err = f.WriteAt(hdr.marshal(), 0); err == nil {
			err = f.Sync()
		}
	}
	return hdr, errors.Join(err, f.Close())
}
