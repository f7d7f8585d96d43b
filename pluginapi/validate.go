package pluginapi

// ValidatePutRequest checks a PutRequest against the contract and the
// backend's advertised Info, before any byte moves: the key, the metadata
// (within info.Limits.MaxMetadataBytes), the size against
// info.Limits.MaxObjectSize, if_absent and if_match being mutually
// exclusive, and each precondition being advertised.
//
// The gRPC Server calls it for every Put and PutFile; a Backend that is also
// called in-process (the conformance fake, test doubles in core/tier2 and
// the coordinator) calls it too, so host code that writes something every
// real backend refuses fails the same way in-process as through a plugin.
func ValidatePutRequest(req PutRequest, info Info) error {
	if err := ValidateKey(req.Key); err != nil {
		return err
	}
	if err := ValidateMetadata(req.Metadata, int(info.Limits.MaxMetadataBytes)); err != nil {
		return err
	}
	if m := info.Limits.MaxObjectSize; m != 0 && req.Size > m {
		return Errorf(CodeInvalidArgument, req.Key, "size %d exceeds the backend's maximum object size %d", req.Size, m)
	}
	if req.IfAbsent && req.IfMatch != "" {
		return Errorf(CodeInvalidArgument, req.Key, "if_absent and if_match are mutually exclusive")
	}
	if req.IfAbsent && !info.Capabilities.IfAbsent {
		return Errorf(CodeUnimplemented, req.Key, "if_absent is not supported by this backend")
	}
	if req.IfMatch != "" && !info.Capabilities.IfMatch {
		return Errorf(CodeUnimplemented, req.Key, "if_match is not supported by this backend")
	}
	return nil
}
