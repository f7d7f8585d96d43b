package pluginapi

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// oddCode fails Head and Delete with a Code the contract's table has no
// row for (a backend's own constant, or a number from a newer pluginapi).
type oddCode struct{ *mem }

func (oddCode) Head(context.Context, string) (ObjectInfo, error) {
	return ObjectInfo{}, &Error{Code: Code(42), Message: "disk on fire"}
}

func (oddCode) Delete(context.Context, string) error {
	return &Error{Code: Code(42), Message: "disk on fire"}
}

// An error is never turned into success on the wire: a Code outside the
// table is "anything else", INTERNAL.
func TestUnknownErrorCodeIsNotSuccess(t *testing.T) {
	st := ToStatus(&Error{Code: Code(42), Key: "k", Message: "disk on fire"})
	require.NotNil(t, st)
	require.Equal(t, codes.Internal, st.Code())
	require.ErrorIs(t, FromStatus(st), ErrInternal)

	c := serveRaw(t, NewServer(oddCode{memBackend()}, nil))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := c.Delete(ctx, "k")
	require.ErrorIs(t, err, ErrInternal, "a failed Delete must not reach the host as success")
	info, err := c.Head(ctx, "k")
	require.ErrorIs(t, err, ErrInternal, "a failed Head must not reach the host as an empty ObjectInfo (got %+v)", info)
}
