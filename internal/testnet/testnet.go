// Package testnet hands tests loopback addresses to give servers that
// need theirs before they start (a Raft configuration names every
// member's address up front).
//
// Every listener stays open until all of a call's addresses are picked:
// closed one by one, the kernel may hand the same port out twice, and a
// cluster whose configuration holds one address twice does not start.
// Another process can still take a port between the call and its use;
// that is rare and shows as a clear bind error, not as a wrong cluster.
package testnet

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// LoopbackAddrs returns n distinct 127.0.0.1 addresses, free when the call
// returns.
func LoopbackAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lns = append(lns, ln)
		addrs[i] = ln.Addr().String()
	}
	return addrs
}
