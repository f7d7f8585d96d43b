// Package checksum is the one place AOF2 computes CRC-64/NVME.
//
// Segments, the manifest log, tier-1 artifacts and tier-2 objects all use the
// same checksum (polynomial 0xad93d23594c93659, reflected, init and xorout all
// ones; check value of "123456789" is 0xae8b14860a799888). It is the checksum
// S3 supports natively, and github.com/minio/crc64nvme computes it with
// carry-less multiply instructions at tens of GB/s, so verifying a whole
// segment costs far less than reading it.
//
// The library's fast path only takes 16-byte aligned runs of 128 bytes; it
// does the unaligned head and the tail a byte at a time, which dominates for
// the few-hundred-byte inputs of a record checksum (measured: 110–150 ns for
// 256–280 bytes at an 8-byte offset, against 48 ns for 256 aligned bytes).
// Update therefore hands the library only the aligned 128-byte runs and does
// head and tail with slicing-by-8 tables of the same polynomial.
package checksum

import (
	"encoding/binary"
	"unsafe"

	"github.com/minio/crc64nvme"
)

// Sum64 returns the CRC-64/NVME of b.
func Sum64(b []byte) uint64 { return Update(0, b) }

// Update extends crc (a previous Sum64/Update result, or 0) with b.
func Update(crc uint64, b []byte) uint64 {
	if len(b) < 2*block {
		return updateSmall(crc, b)
	}
	if head := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & 15); head > 0 {
		crc = updateSmall(crc, b[:head])
		b = b[head:]
	}
	n := len(b) &^ (block - 1)
	crc = crc64nvme.Update(crc, b[:n])
	return updateSmall(crc, b[n:])
}

// block is the run length of the library's carry-less multiply loop.
const block = 128

// Fold32 folds a CRC-64 into 32 bits as hi ^ lo, the form stored in
// segment record headers.
func Fold32(crc uint64) uint32 { return uint32(crc>>32) ^ uint32(crc) }

// poly is the reflected CRC-64/NVME polynomial.
const poly = 0x9a6c9329ac4bc9b5

var tables = func() *[8][256]uint64 {
	var t [8][256]uint64
	for i := range 256 {
		crc := uint64(i)
		for range 8 {
			if crc&1 == 1 {
				crc = crc>>1 ^ poly
			} else {
				crc >>= 1
			}
		}
		t[0][i] = crc
	}
	for i := range 256 {
		crc := t[0][i]
		for j := 1; j < 8; j++ {
			crc = t[0][crc&0xff] ^ crc>>8
			t[j][i] = crc
		}
	}
	return &t
}()

// updateSmall is slicing-by-8: eight bytes per step, then the rest a byte
// at a time.
func updateSmall(crc uint64, b []byte) uint64 {
	t := tables
	crc = ^crc
	for len(b) >= 8 {
		crc ^= binary.LittleEndian.Uint64(b)
		crc = t[7][crc&0xff] ^ t[6][crc>>8&0xff] ^ t[5][crc>>16&0xff] ^ t[4][crc>>24&0xff] ^
			t[3][crc>>32&0xff] ^ t[2][crc>>40&0xff] ^ t[1][crc>>48&0xff] ^ t[0][crc>>56]
		b = b[8:]
	}
	for _, v := range b {
		crc = t[0][byte(crc)^v] ^ crc>>8
	}
	return ^crc
}
