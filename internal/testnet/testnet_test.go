package testnet

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoopbackAddrsAreDistinctAndFree(t *testing.T) {
	addrs := LoopbackAddrs(t, 32)
	seen := map[string]bool{}
	for _, a := range addrs {
		require.False(t, seen[a], "address %s handed out twice", a)
		seen[a] = true
		ln, err := net.Listen("tcp", a)
		require.NoError(t, err, "address %s not free after the call", a)
		require.NoError(t, ln.Close())
	}
}
