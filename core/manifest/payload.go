package manifest

import "fmt"

// Payload layouts (docs/formats.md#record-types-and-payloads), little-endian, packed (no padding inside a
// payload; the record frame pads the payload to 8 bytes):
//
//	type                 payload
//	0  SegmentOpened      base_offset u64, epoch u32                                   12 B
//	1  SealSegment        durable_bytes u64, segment_crc64 u64, ext_id u64,
//	                      coordinator_watermark u64, flush_failure u8 (0|1)            33 B
//	2  CompressionStarted job_id u32                                                    4 B
//	3  CompressionDone    compressed_bytes u64, dictionary_id u32                      12 B
//	4  CompressionFailed  reason_code u32                                               4 B
//	5  UploadStarted      key_len u16, key                                        2 + key B
//	6  UploadDone         key_len u16, etag_len u16, key, etag             4 + key + etag B
//	7  UploadFailed       key_len u16, reason_code u32, key                       6 + key B
//	8  Tier2DeleteQueued  key_len u16, key                                        2 + key B
//	9  Tier2Deleted       key_len u16, key                                        2 + key B
//	10 HydrationStarted   source_tier u64                                               8 B
//	11 HydrationDone      resident_bytes u64                                            8 B
//	12 HydrationFailed    reason_code u32                                               4 B
//	13 LocalEvicted       reclaimed_bytes u64                                           8 B
//	14 SnapshotMarker     chunk_index u64, chunk_offset u64, snapshot_id u64           24 B
//	15 CustomEvent        schema_id u32, blob_len u16, blob                      6 + blob B
//
// Decoding is strict: a payload must have exactly the length its fields
// imply and flush_failure must be 0 or 1, so every payload that decodes
// re-encodes to the same bytes.

func (SegmentOpened) payloadLen() int      { return 12 }
func (SealSegment) payloadLen() int        { return 33 }
func (CompressionStarted) payloadLen() int { return 4 }
func (CompressionDone) payloadLen() int    { return 12 }
func (CompressionFailed) payloadLen() int  { return 4 }
func (r UploadStarted) payloadLen() int    { return 2 + len(r.Key) }
func (r UploadDone) payloadLen() int       { return 4 + len(r.Key) + len(r.ETag) }
func (r UploadFailed) payloadLen() int     { return 6 + len(r.Key) }
func (r Tier2DeleteQueued) payloadLen() int {
	return 2 + len(r.Key)
}
func (r Tier2Deleted) payloadLen() int   { return 2 + len(r.Key) }
func (HydrationStarted) payloadLen() int { return 8 }
func (HydrationDone) payloadLen() int    { return 8 }
func (HydrationFailed) payloadLen() int  { return 4 }
func (LocalEvicted) payloadLen() int     { return 8 }
func (SnapshotMarker) payloadLen() int   { return 24 }
func (r CustomEvent) payloadLen() int    { return 6 + len(r.Blob) }
func (r Unknown) payloadLen() int        { return len(r.Payload) }

func (r SegmentOpened) appendPayload(b []byte) []byte {
	b = le.AppendUint64(b, r.BaseOffset)
	return le.AppendUint32(b, r.Epoch)
}

func (r SealSegment) appendPayload(b []byte) []byte {
	b = le.AppendUint64(b, r.DurableBytes)
	b = le.AppendUint64(b, uint64(r.SegmentCRC64))
	b = le.AppendUint64(b, r.ExtID)
	b = le.AppendUint64(b, r.CoordinatorWatermark)
	if r.FlushFailure {
		return append(b, 1)
	}
	return append(b, 0)
}

func (r CompressionStarted) appendPayload(b []byte) []byte { return le.AppendUint32(b, r.JobID) }

func (r CompressionDone) appendPayload(b []byte) []byte {
	b = le.AppendUint64(b, r.CompressedBytes)
	return le.AppendUint32(b, r.DictionaryID)
}

func (r CompressionFailed) appendPayload(b []byte) []byte {
	return le.AppendUint32(b, uint32(r.Reason))
}

func (r UploadStarted) appendPayload(b []byte) []byte { return appendStr16(b, r.Key) }

func (r UploadDone) appendPayload(b []byte) []byte {
	b = le.AppendUint16(b, uint16(len(r.Key)))
	b = le.AppendUint16(b, uint16(len(r.ETag)))
	b = append(b, r.Key...)
	return append(b, r.ETag...)
}

func (r UploadFailed) appendPayload(b []byte) []byte {
	b = le.AppendUint16(b, uint16(len(r.Key)))
	b = le.AppendUint32(b, uint32(r.Reason))
	return append(b, r.Key...)
}

func (r Tier2DeleteQueued) appendPayload(b []byte) []byte { return appendStr16(b, r.Key) }
func (r Tier2Deleted) appendPayload(b []byte) []byte      { return appendStr16(b, r.Key) }
func (r HydrationStarted) appendPayload(b []byte) []byte {
	return le.AppendUint64(b, r.SourceTier)
}
func (r HydrationDone) appendPayload(b []byte) []byte { return le.AppendUint64(b, r.ResidentBytes) }
func (r HydrationFailed) appendPayload(b []byte) []byte {
	return le.AppendUint32(b, uint32(r.Reason))
}
func (r LocalEvicted) appendPayload(b []byte) []byte { return le.AppendUint64(b, r.ReclaimedBytes) }

func (r SnapshotMarker) appendPayload(b []byte) []byte {
	b = le.AppendUint64(b, r.ChunkIndex)
	b = le.AppendUint64(b, r.ChunkOffset)
	return le.AppendUint64(b, r.SnapshotID)
}

func (r CustomEvent) appendPayload(b []byte) []byte {
	b = le.AppendUint32(b, r.SchemaID)
	b = le.AppendUint16(b, uint16(len(r.Blob)))
	return append(b, r.Blob...)
}

func (r Unknown) appendPayload(b []byte) []byte { return append(b, r.Payload...) }

// checkKey validates an object key or etag field.
func checkKey(field, s string, allowEmpty bool) error {
	if len(s) > MaxKeyLen {
		return invalidf("%s is %d bytes, longer than %d", field, len(s), MaxKeyLen)
	}
	if !allowEmpty && s == "" {
		return invalidf("%s is empty", field)
	}
	return nil
}

func (SegmentOpened) validate() error      { return nil }
func (SealSegment) validate() error        { return nil }
func (CompressionStarted) validate() error { return nil }
func (CompressionDone) validate() error    { return nil }
func (CompressionFailed) validate() error  { return nil }
func (r UploadStarted) validate() error    { return checkKey("UploadStarted.Key", r.Key, false) }
func (r UploadDone) validate() error {
	if err := checkKey("UploadDone.Key", r.Key, false); err != nil {
		return err
	}
	return checkKey("UploadDone.ETag", r.ETag, true)
}
func (r UploadFailed) validate() error { return checkKey("UploadFailed.Key", r.Key, false) }
func (r Tier2DeleteQueued) validate() error {
	return checkKey("Tier2DeleteQueued.Key", r.Key, false)
}
func (r Tier2Deleted) validate() error   { return checkKey("Tier2Deleted.Key", r.Key, false) }
func (HydrationStarted) validate() error { return nil }
func (HydrationDone) validate() error    { return nil }
func (HydrationFailed) validate() error  { return nil }
func (LocalEvicted) validate() error     { return nil }
func (SnapshotMarker) validate() error   { return nil }
func (r CustomEvent) validate() error {
	if len(r.Blob) > MaxKeyLen {
		return invalidf("CustomEvent.Blob is %d bytes, longer than %d", len(r.Blob), MaxKeyLen)
	}
	return nil
}
func (r Unknown) validate() error {
	if r.RecordType.Known() {
		return invalidf("Unknown record carries known type %s", r.RecordType)
	}
	if len(r.Payload) == 0 {
		return ErrEmptyRecord
	}
	return nil
}

// decodePayload decodes the payload p of a record of type t. Unknown types
// decode to Unknown with a copy of p. Strings and blobs are copied, so the
// record does not alias p.
func decodePayload(t RecordType, h Header, p []byte) (Record, error) {
	d := &decoder{b: p, what: "payload"}
	var r Record
	switch t {
	case TypeSegmentOpened:
		r = SegmentOpened{Header: h, BaseOffset: d.u64(), Epoch: d.u32()}
	case TypeSealSegment:
		s := SealSegment{Header: h, DurableBytes: d.u64(), SegmentCRC64: Hex64(d.u64()), ExtID: d.u64(), CoordinatorWatermark: d.u64()}
		switch ff := d.u8(); ff {
		case 0:
		case 1:
			s.FlushFailure = true
		default:
			d.fail("flush_failure is %d, want 0 or 1", ff)
		}
		r = s
	case TypeCompressionStarted:
		r = CompressionStarted{Header: h, JobID: d.u32()}
	case TypeCompressionDone:
		r = CompressionDone{Header: h, CompressedBytes: d.u64(), DictionaryID: d.u32()}
	case TypeCompressionFailed:
		r = CompressionFailed{Header: h, Reason: ReasonCode(d.u32())}
	case TypeUploadStarted:
		r = UploadStarted{Header: h, Key: d.str16()}
	case TypeUploadDone:
		kl, el := int(d.u16()), int(d.u16())
		r = UploadDone{Header: h, Key: d.str(kl), ETag: d.str(el)}
	case TypeUploadFailed:
		kl := int(d.u16())
		reason := ReasonCode(d.u32())
		r = UploadFailed{Header: h, Reason: reason, Key: d.str(kl)}
	case TypeTier2DeleteQueued:
		r = Tier2DeleteQueued{Header: h, Key: d.str16()}
	case TypeTier2Deleted:
		r = Tier2Deleted{Header: h, Key: d.str16()}
	case TypeHydrationStarted:
		r = HydrationStarted{Header: h, SourceTier: d.u64()}
	case TypeHydrationDone:
		r = HydrationDone{Header: h, ResidentBytes: d.u64()}
	case TypeHydrationFailed:
		r = HydrationFailed{Header: h, Reason: ReasonCode(d.u32())}
	case TypeLocalEvicted:
		r = LocalEvicted{Header: h, ReclaimedBytes: d.u64()}
	case TypeSnapshotMarker:
		r = SnapshotMarker{Header: h, ChunkIndex: d.u64(), ChunkOffset: d.u64(), SnapshotID: d.u64()}
	case TypeCustomEvent:
		schema := d.u32()
		n := int(d.u16())
		var blob []byte
		if d.need(n) && n > 0 {
			blob = append([]byte(nil), p[d.off:d.off+n]...)
			d.off += n
		}
		r = CustomEvent{Header: h, SchemaID: schema, Blob: blob}
	default:
		d.off = len(p)
		r = Unknown{Header: h, RecordType: t, Payload: append([]byte{}, p...)}
	}
	if err := d.finish(); err != nil {
		return nil, fmt.Errorf("%s %w", t, err)
	}
	// Keys must be non-empty; an empty key is a structural error on disk.
	if t.Known() && t != TypeCustomEvent {
		if err := r.validate(); err != nil {
			return nil, corruptf("%s payload: %v", t, err)
		}
	}
	return r, nil
}
