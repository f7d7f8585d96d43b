package pluginapi

import (
	"time"

	pb "github.com/aof2/aof2/pluginapi/proto/aof2/backend/v1"
)

func infoToProto(i Info) *pb.GetInfoResponse {
	c, l := i.Capabilities, i.Limits
	return &pb.GetInfoResponse{
		Name: i.Name, Version: i.Version,
		ContractMajor: i.ContractMajor, ContractMinor: i.ContractMinor,
		Capabilities: &pb.Capabilities{
			RangeGet: c.RangeGet, PutFile: c.PutFile, GetFile: c.GetFile,
			IfAbsent: c.IfAbsent, IfMatch: c.IfMatch, List: c.List,
		},
		Limits: &pb.Limits{
			MaxChunkSize: l.MaxChunkSize, PreferredChunkSize: l.PreferredChunkSize,
			MaxObjectSize: l.MaxObjectSize, MaxConcurrentStreams: l.MaxConcurrentStreams,
			MaxMetadataBytes: l.MaxMetadataBytes,
		},
	}
}

func infoFromProto(r *pb.GetInfoResponse) Info {
	c, l := r.GetCapabilities(), r.GetLimits()
	return Info{
		Name: r.GetName(), Version: r.GetVersion(),
		ContractMajor: r.GetContractMajor(), ContractMinor: r.GetContractMinor(),
		Capabilities: Capabilities{
			RangeGet: c.GetRangeGet(), PutFile: c.GetPutFile(), GetFile: c.GetGetFile(),
			IfAbsent: c.GetIfAbsent(), IfMatch: c.GetIfMatch(), List: c.GetList(),
		},
		Limits: Limits{
			MaxChunkSize: l.GetMaxChunkSize(), PreferredChunkSize: l.GetPreferredChunkSize(),
			MaxObjectSize: l.GetMaxObjectSize(), MaxConcurrentStreams: l.GetMaxConcurrentStreams(),
			MaxMetadataBytes: l.GetMaxMetadataBytes(),
		},
	}
}

func objectToProto(o ObjectInfo) *pb.ObjectInfo {
	p := &pb.ObjectInfo{Key: o.Key, Size: o.Size, Etag: o.ETag, Metadata: o.Metadata}
	if o.HasCRC64 {
		crc := o.CRC64
		p.Crc64Nvme = &crc
	}
	if !o.ModTime.IsZero() {
		p.ModTimeUnixNano = o.ModTime.UnixNano()
	}
	return p
}

func objectFromProto(p *pb.ObjectInfo) ObjectInfo {
	o := ObjectInfo{Key: p.GetKey(), Size: p.GetSize(), ETag: p.GetEtag(), Metadata: cloneMetadata(p.GetMetadata())}
	if p != nil && p.Crc64Nvme != nil {
		o.CRC64, o.HasCRC64 = *p.Crc64Nvme, true
	}
	if ns := p.GetModTimeUnixNano(); ns != 0 {
		o.ModTime = time.Unix(0, ns)
	}
	return o
}

func putHeaderToProto(r PutRequest) *pb.PutHeader {
	h := &pb.PutHeader{Key: r.Key, Size: r.Size, Crc64Nvme: r.CRC64, Metadata: r.Metadata}
	if r.IfAbsent || r.IfMatch != "" {
		h.Precondition = &pb.Precondition{IfAbsent: r.IfAbsent, IfMatch: r.IfMatch}
	}
	return h
}

func putHeaderFromProto(h *pb.PutHeader) PutRequest {
	return PutRequest{
		Key: h.GetKey(), Size: h.GetSize(), CRC64: h.GetCrc64Nvme(),
		Metadata: cloneMetadata(h.GetMetadata()),
		IfAbsent: h.GetPrecondition().GetIfAbsent(), IfMatch: h.GetPrecondition().GetIfMatch(),
	}
}

func getToProto(r GetRequest) *pb.GetRequest {
	return &pb.GetRequest{Key: r.Key, Offset: r.Offset, Length: r.Length, IfMatch: r.IfMatch}
}

func getFromProto(r *pb.GetRequest) GetRequest {
	return GetRequest{Key: r.GetKey(), Offset: r.GetOffset(), Length: r.GetLength(), IfMatch: r.GetIfMatch()}
}

func rangeToProto(r ObjectRange) *pb.GetHeader {
	return &pb.GetHeader{Info: objectToProto(r.Info), Offset: r.Offset, Length: r.Length}
}

func rangeFromProto(h *pb.GetHeader) ObjectRange {
	return ObjectRange{Info: objectFromProto(h.GetInfo()), Offset: h.GetOffset(), Length: h.GetLength()}
}
