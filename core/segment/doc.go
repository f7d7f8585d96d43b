// Package segment implements the tier-0 segment file: its on-disk format,
// the writer that appends records through a memory map, the scanner that
// verifies and recovers a segment's tail, and the current.sealed pointer.
//
// A segment is a preallocated file of fixed capacity (a power of two). The
// header is written when the segment is activated, records follow it, and the
// footer sits at the fixed tail, written once at seal. All integers are
// little-endian.
//
//	0        64                                  durable_bytes       capacity-96   capacity
//	+--------+-----------+-----------+-- ... ----+--------- zeros ----+------------+
//	| header | record 0  | record 1  |           |                    |   footer   |
//	+--------+-----------+-----------+-- ... ----+--------------------+------------+
//
//	header (64 B)                    record (24 B header + payload, 8-aligned)
//	  0  magic "AOF2SEGM"              0  payload_len u32 (> 0; 0 ends the records)
//	  8  version u32 = 1               4  checksum u32: CRC-64/NVME over
//	 12  header_len u32 = 64                [0,4) ++ [8, 24+payload_len), hi^lo
//	 16  stream_id u64                 8  timestamp u64 (unix ns)
//	 24  segment_id u64               16  ext_id u64
//	 32  base_offset u64              24  payload, then zero padding to 8
//	 40  base_record u64
//	 48  created_at u64 (unix ns)    footer (96 B at capacity-96)
//	 56  ext_id u64                    0  magic "AOF2FOOT"   8 version u32 = 1
//	                                  12  flags u32 (bit 0 sealed, bit 1 flush_failure)
//	                                  16  segment_id   24 base_record   32 record_count
//	                                  40  durable_bytes 48 last_record_id 56 last_timestamp
//	                                  64  sealed_at    72 segment_crc64  80 ext_id
//	                                  88  coordinator_watermark
//
// Files are named <segment_id:020>_<base_offset:020>_<created_at_ns:020>.seg
// so that lexical order is numeric order; the name repeats header fields and
// recovery cross-checks them.
//
// Neither header nor footer carries its own checksum (the format is fixed,
// docs/formats.md#segment-file), so decoding validates structure instead: magic, version,
// lengths, agreement with the file name, and, for a footer, that the last
// record it names ends exactly at durable_bytes. Every record is verified by
// its own checksum, and segment_crc64 covers the whole written area.
package segment
