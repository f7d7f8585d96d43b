package client

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7070": true, "127.9.9.9:1": true, "[::1]:7070": true, "localhost:7070": true,
		"dns:///localhost:7070": true, "passthrough:///127.0.0.1:1": true,
		"10.0.0.1:7070": false, "example.com:443": false, "[2001:db8::1]:1": false, "dns:///aof2.internal:7070": false,
	} {
		require.Equal(t, want, isLoopback(addr), addr)
	}
}
