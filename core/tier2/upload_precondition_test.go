package tier2

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
)

// raceLoserPrecondition answers an if_absent Put that lost to another
// writer with FailedPrecondition, which the contract's IF-ABSENT-RACE rule
// (docs/plugin-contract.md, conformance RuleIfAbsentRace) explicitly allows
// for racing losers (S3 answers 409/412 there).
type raceLoserPrecondition struct{ *fake.Backend }

func (b raceLoserPrecondition) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	info, err := b.Backend.Put(ctx, req, body)
	if req.IfAbsent && errors.Is(err, pluginapi.ErrAlreadyExists) {
		return info, &pluginapi.Error{Code: pluginapi.CodePrecondition, Key: req.Key, Message: "conditional request conflict"}
	}
	return info, err
}

// TestUploadIfAbsentLoserPrecondition: an upload whose if_absent Put
// lost a race to a writer of the very same bytes (an earlier attempt whose
// answer was lost) must be AlreadyPresent, as it is with AlreadyExists.
func TestUploadIfAbsentLoserPrecondition(t *testing.T) {
	fb := fake.New(fake.Options{})
	e := newEnvWith(t, fb, raceLoserPrecondition{fb}, nil)
	data := payload(5000, 7)
	first, err := e.store.UploadManifestChunk(context.Background(), 1, 1, data)
	require.NoError(t, err)
	again, err := e.store.UploadManifestChunk(context.Background(), 1, 1, data)
	require.NoError(t, err, "the key already holds these bytes: the upload is done")
	require.True(t, again.AlreadyPresent)
	require.Equal(t, first.ETag, again.ETag)
}
