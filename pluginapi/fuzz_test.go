package pluginapi

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// FuzzFromStatus decodes whatever status a plugin might send: it must never
// panic, always classify, and survive a round trip unchanged.
func FuzzFromStatus(f *testing.F) {
	f.Add(uint32(codes.NotFound), "OBJECT_NOT_FOUND", ErrorDomain, "k", "msg", int64(0))
	f.Add(uint32(codes.ResourceExhausted), "THROTTLED", ErrorDomain, "", "slow", int64(time.Second))
	f.Add(uint32(codes.InvalidArgument), "INVALID_CONFIG", "other.domain", "x", "", int64(-5))
	f.Add(uint32(99), "", "", "", "", int64(0))
	f.Fuzz(func(t *testing.T, code uint32, reason, domain, key, msg string, retry int64) {
		st := status.New(codes.Code(code), msg)
		if withInfo, err := st.WithDetails(
			&errdetails.ErrorInfo{Reason: reason, Domain: domain, Metadata: map[string]string{"key": key}},
			&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(retry))},
		); err == nil {
			st = withInfo
		}
		err := FromStatus(st)
		if codes.Code(code) == codes.OK {
			require.NoError(t, err)
			return
		}
		require.Error(t, err)
		c := CodeOf(err)
		require.ErrorIs(t, err, c.sentinel())
		require.Equal(t, c, CodeOf(FromStatus(ToStatus(err))), "a decoded error must re-encode to the same code")
	})
}

func FuzzParseReattach(f *testing.F) {
	f.Add(`{"network":"unix","address":"/tmp/s.sock","pid":1}`)
	f.Add(`{"network":"tcp","address":"127.0.0.1:1"}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReattach(s)
		if err == nil {
			require.Contains(t, []string{"unix", "tcp"}, r.Network)
		}
	})
}
