package conformance

import (
	"errors"
	"fmt"

	"github.com/aof2/aof2/pluginapi"
)

// Rule is one contract rule the suite checks. Every failure names the rule
// it broke, so a backend author can look it up in
// docs/plugin-contract.md#the-conformance-suite and the pluginapi.Backend
// docs.
type Rule struct {
	ID   string
	Text string
}

// The rules, by area.
var (
	RuleInfo           = Rule{"INFO", "GetInfo reports contract major 1, a name and sane limits"}
	RuleChunkNegotiate = Rule{"CHUNK-NEGOTIATE", "Configure picks a chunk size in [64 KiB, 4 MiB) honouring the host's proposal within the backend's limits"}
	RuleConfigUnknown  = Rule{"CONFIG-UNKNOWN", "Configure rejects an unknown setting with InvalidArgument/INVALID_CONFIG"}
	RuleProbe          = Rule{"PROBE", "Probe succeeds on a configured backend and a write probe leaves nothing behind"}
	RuleRoundTrip      = Rule{"ROUND-TRIP", "Get returns exactly the bytes Put stored"}
	RulePutAck         = Rule{"PUT-ACK", "Put returns ObjectInfo with the key, size, a non-empty etag and the CRC-64/NVME sent"}
	RuleHead           = Rule{"HEAD", "Head describes the stored object (size, etag, CRC-64/NVME, metadata, modification time)"}
	RuleChunking       = Rule{"CHUNKING", "a Put is reassembled from chunks of any size up to the negotiated one"}
	RuleFraming        = Rule{"FRAMING", "a malformed Put stream (no header, wrong offsets, chunks over the advertised maximum) fails with InvalidArgument and stores nothing"}
	RuleVisibility     = Rule{"VISIBILITY", "an object becomes visible only after its Put completed"}
	RuleCancel         = Rule{"CANCEL", "a cancelled Put leaves nothing visible and the previous version intact"}
	RuleChecksum       = Rule{"CHECKSUM", "a Put whose bytes do not match the declared size or CRC-64/NVME fails with DataLoss and stores nothing"}
	RuleOverwrite      = Rule{"OVERWRITE", "a Put without precondition replaces the object and changes its etag"}
	RuleIfAbsent       = Rule{"IF-ABSENT", "if_absent succeeds only when the key is missing, else AlreadyExists with the object untouched"}
	RuleIfMatch        = Rule{"IF-MATCH", "if_match succeeds only against the current etag, else FailedPrecondition with the object untouched; Get, ranged Get and GetFile honour it too"}
	RuleRange          = Rule{"RANGE", "Get serves byte ranges: length 0 reads to the end, ranges past the end are clipped, an offset at or past the end is OutOfRange"}
	RuleNotFound       = Rule{"NOT-FOUND", "Head, Get and GetFile of a missing key fail with NotFound naming the key"}
	RuleDelete         = Rule{"DELETE", "Delete removes the object and deleting a missing key succeeds"}
	RuleListOrder      = Rule{"LIST-ORDER", "List returns each matching key once, in ascending byte order, in pages no larger than asked; a callback error stops it after that page and is returned"}
	RuleListPrefix     = Rule{"LIST-PREFIX", "List returns only keys with the prefix, after start_after"}
	RuleConcurrency    = Rule{"CONCURRENCY", "concurrent Put and Get streams do not interfere"}
	RuleInvalidKey     = Rule{"INVALID-KEY", "invalid keys are rejected with InvalidArgument/INVALID_KEY by Put, Head, Get and Delete, and nothing is stored"}
	RuleMetadata       = Rule{"METADATA", "metadata up to the advertised limit round-trips; over the limit or malformed it is InvalidArgument"}
	RuleFiles          = Rule{"FILES", "PutFile and GetFile move objects between local files and the backend with the same guarantees as Put and Get (a file longer or shorter than declared is DataLoss)"}
	RuleUnimplemented  = Rule{"UNIMPLEMENTED", "an optional feature the backend does not advertise answers Unimplemented"}
	RuleLarge          = Rule{"LARGE", "large objects round-trip intact"}
	RuleCleanup        = Rule{"CLEANUP", "everything the suite wrote under its prefix can be deleted"}
	RuleExit           = Rule{"EXIT", "a plugin process exits promptly when the host shuts it down"}

	// Added in suite 1.1 (SuiteVersion).
	RuleListInfo       = Rule{"LIST-INFO", "List describes each object it returns as Head would: its size and the non-empty etag Head reports"}
	RuleIfAbsentRace   = Rule{"IF-ABSENT-RACE", "if_absent is atomic: of several Puts racing if_absent on one missing key exactly one succeeds, every other fails with AlreadyExists (or FailedPrecondition), and the key holds the winner's bytes and etag"}
	RuleIfMatchRace    = Rule{"IF-MATCH-RACE", "if_match is atomic: of several Puts racing if_match on the same current etag exactly one succeeds, every other fails with FailedPrecondition, and the key holds the winner's bytes and etag"}
	RulePutDeleteRace  = Rule{"PUT-DELETE-RACE", "a Delete racing a Put of the same key leaves either the Put's complete bytes or no object; a Put acknowledged after a Delete of its key returned is not undone by that Delete"}
	RuleListConcurrent = Rule{"LIST-CONCURRENT", "List works during concurrent Puts and Deletes under its prefix: it succeeds, keeps ascending order, lists every untouched key exactly once, and shows no object whose Put is still in flight"}
	RuleDirect         = Rule{"DIRECT-VALIDATION", "a Backend called in-process, with no gRPC server in front of it, validates on its own exactly as the plugin path does: invalid keys fail with InvalidArgument/INVALID_KEY, malformed or oversized metadata with InvalidArgument, a body that breaks its declared size or CRC-64/NVME with DataLoss, and nothing is stored"}
)

func (r Rule) msg(format string, args ...any) string {
	return fmt.Sprintf("[%s] %s: %s", r.ID, r.Text, fmt.Sprintf(format, args...))
}

// fail reports a broken rule and stops the behaviour.
func fail(t T, r Rule, format string, args ...any) {
	t.Helper()
	t.Errorf("%s", r.msg(format, args...))
	t.FailNow()
}

// check reports a broken rule and carries on.
func check(t T, r Rule, ok bool, format string, args ...any) bool {
	t.Helper()
	if !ok {
		t.Errorf("%s", r.msg(format, args...))
	}
	return ok
}

// noErr stops the behaviour if err is not nil.
func noErr(t T, r Rule, err error, what string, args ...any) {
	t.Helper()
	if err != nil {
		fail(t, r, "%s: got error %v (%s), want success", fmt.Sprintf(what, args...), err, pluginapi.CodeOf(err))
	}
}

// wantErr checks that err matches the sentinel.
func wantErr(t T, r Rule, err, sentinel error, what string, args ...any) bool {
	t.Helper()
	if err == nil {
		t.Errorf("%s", r.msg("%s: got success, want %v (%s)", fmt.Sprintf(what, args...), sentinel, grpcName(sentinel)))
		return false
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("%s", r.msg("%s: got %v (%s), want %v (%s)", fmt.Sprintf(what, args...), err, pluginapi.CodeOf(err), sentinel, grpcName(sentinel)))
		return false
	}
	return true
}

func grpcName(sentinel error) string {
	return pluginapi.ToStatus(sentinel).Code().String()
}
