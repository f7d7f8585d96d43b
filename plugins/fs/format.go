package fs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/aof2/aof2/pluginapi"
)

// An object file is a header followed by the object's bytes. The header
// carries everything Head returns, so the checksum and metadata are
// committed by the same rename as the data and can never disagree with it.
//
//	+0   magic        "AOF2OBJ" 0x01 (the last byte is the format version)
//	+8   header_len   u32  bytes from +0 to the end of header_crc
//	+12  size         u64  object bytes after the header
//	+20  crc64nvme    u64  CRC-64/NVME of the object bytes
//	+28  mod_time     i64  Unix nanoseconds of the commit
//	+36  etag_len     u16, etag bytes
//	     md_count     u16, then per entry, keys strictly ascending:
//	                  key_len u16, key, value_len u16, value
//	     header_crc   u64  CRC-64/NVME of every header byte before it
//	+header_len       the object's bytes
//
// All integers are little-endian. A reader checks every length against the
// bytes that remain before using it, and the file's length against
// header_len + size.
const (
	magic          = "AOF2OBJ\x01"
	fixedHeaderLen = 36
	// maxHeaderLen bounds a header: the fixed part, an etag, and metadata
	// within maxMetadataBytes plus its per-entry lengths.
	maxHeaderLen = 64 << 10
)

var errCorrupt = errors.New("corrupt object header")

type header struct {
	size    uint64
	crc     uint64
	modTime int64
	etag    string
	md      map[string]string
}

func (h *header) info(key string) pluginapi.ObjectInfo {
	return pluginapi.ObjectInfo{
		Key: key, Size: h.size, ETag: h.etag, CRC64: h.crc, HasCRC64: true,
		Metadata: h.md, ModTime: time.Unix(0, h.modTime),
	}
}

// encodeHeader serialises h; metadata entries are sorted so the same
// object always has the same header.
func encodeHeader(h *header) ([]byte, error) {
	if len(h.etag) > 0xffff || len(h.md) > 0xffff {
		return nil, fmt.Errorf("fs: header fields too long")
	}
	keys := make([]string, 0, len(h.md))
	for k := range h.md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b := make([]byte, 0, fixedHeaderLen+2+len(h.etag)+2+pluginapi.MetadataSize(h.md)+4*len(keys)+8)
	b = append(b, magic...)
	b = binary.LittleEndian.AppendUint32(b, 0) // patched below
	b = binary.LittleEndian.AppendUint64(b, h.size)
	b = binary.LittleEndian.AppendUint64(b, h.crc)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.modTime))
	b = appendString16(b, h.etag)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(keys)))
	for _, k := range keys {
		v := h.md[k]
		if len(k) > 0xffff || len(v) > 0xffff {
			return nil, fmt.Errorf("fs: metadata entry too long")
		}
		b = appendString16(b, k)
		b = appendString16(b, v)
	}
	total := len(b) + 8
	if total > maxHeaderLen {
		return nil, fmt.Errorf("fs: header of %d bytes exceeds %d", total, maxHeaderLen)
	}
	binary.LittleEndian.PutUint32(b[8:], uint32(total))
	return binary.LittleEndian.AppendUint64(b, pluginapi.CRC64(b)), nil
}

func appendString16(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// headerLen reads the total header length from the fixed prefix.
func headerLen(prefix []byte) (int, error) {
	if len(prefix) < 12 || string(prefix[:8]) != magic {
		return 0, fmt.Errorf("%w: bad magic", errCorrupt)
	}
	n := binary.LittleEndian.Uint32(prefix[8:])
	if n < fixedHeaderLen+2+2+8 || n > maxHeaderLen {
		return 0, fmt.Errorf("%w: header length %d", errCorrupt, n)
	}
	return int(n), nil
}

// decodeHeader parses a whole header (len(b) == its header_len).
func decodeHeader(b []byte) (*header, error) {
	n, err := headerLen(b)
	if err != nil {
		return nil, err
	}
	if len(b) != n {
		return nil, fmt.Errorf("%w: have %d header bytes, header says %d", errCorrupt, len(b), n)
	}
	if got, want := pluginapi.CRC64(b[:n-8]), binary.LittleEndian.Uint64(b[n-8:]); got != want {
		return nil, fmt.Errorf("%w: header checksum %016x, stored %016x", errCorrupt, got, want)
	}
	h := &header{
		size:    binary.LittleEndian.Uint64(b[12:]),
		crc:     binary.LittleEndian.Uint64(b[20:]),
		modTime: int64(binary.LittleEndian.Uint64(b[28:])),
	}
	r := reader{b: b[fixedHeaderLen : n-8]}
	h.etag = r.string16()
	count := r.uint16()
	prev := ""
	for i := range count {
		k, v := r.string16(), r.string16()
		if r.err != nil {
			break
		}
		if i > 0 && k <= prev {
			return nil, fmt.Errorf("%w: metadata keys out of order at %q", errCorrupt, k)
		}
		prev = k
		if h.md == nil {
			h.md = make(map[string]string, count)
		}
		h.md[k] = v
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing header bytes", errCorrupt, len(r.b))
	}
	return h, nil
}

// reader consumes length-prefixed fields, remembering the first overrun.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uint16() int {
	if r.err != nil || len(r.b) < 2 {
		r.fail()
		return 0
	}
	v := binary.LittleEndian.Uint16(r.b)
	r.b = r.b[2:]
	return int(v)
}

func (r *reader) string16() string {
	n := r.uint16()
	if r.err != nil || len(r.b) < n {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated field", errCorrupt)
	}
}
