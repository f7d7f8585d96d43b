// Package checksum is the one place AOF2 computes CRC-64/NVME.
//
// Segments, the manifest log, tier-1 artifacts and tier-2 objects all use the
// same checksum (polynomial 0xad93d23594c93659, reflected, init and xorout all
// ones; check value of "123456789" is 0xae8b14860a799888). It is the checksum
// S3 supports natively, and github.com/minio/crc64nvme computes it with
// carry-less multiply instructions at tens of GB/s, so verifying a whole
// segment costs far less than reading it.
package checksum

import "github.com/minio/crc64nvme"

// Sum64 returns the CRC-64/NVME of b.
func Sum64(b []byte) uint64 { return crc64nvme.Checksum(b) }

// Update extends crc (a previous Sum64/Update result, or 0) with b.
func Update(crc uint64, b []byte) uint64 { return crc64nvme.Update(crc, b) }

// Fold32 folds a CRC-64 into 32 bits as hi ^ lo, the form stored in
// segment record headers.
func Fold32(crc uint64) uint32 { return uint32(crc>>32) ^ uint32(crc) }
