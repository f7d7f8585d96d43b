package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClusterBlock(t *testing.T) {
	const noTier2 = "tier2 { enabled = false }\n"
	ok := mustLoad(t, noTier2+`cluster {
  node_id   = "n1"
  raft_addr = "127.0.0.1:7500"
  peers     = ["n1=127.0.0.1:7500", "n2=127.0.0.1:7510", "n3=127.0.0.1:7520"]
}`, nil)
	require.True(t, ok.Clustered())
	require.Equal(t, "auto", ok.Cluster.LogStore)
	require.False(t, mustLoad(t, "", nil).Clustered())
	withTier2 := mustLoad(t, `cluster {
  node_id   = "n1"
  raft_addr = "127.0.0.1:7500"
}`, nil)
	require.True(t, withTier2.Clustered() && withTier2.Tier2Enabled(), "a cluster tiers to tier 2, through its leader")

	for _, tc := range []struct{ name, src, want string }{
		{"no raft_addr", noTier2 + `cluster { node_id = "n1" }`, "cluster.raft_addr: required with cluster.node_id"},
		{"raft_addr alone", noTier2 + `cluster { raft_addr = "127.0.0.1:1" }`, "needs cluster.node_id"},
		{"peers without self", noTier2 + `cluster {
  node_id = "n1"
  raft_addr = "127.0.0.1:1"
  peers = ["n2=127.0.0.1:2"]
}`, "must list this node as n1=127.0.0.1:1"},
		{"peers and join", noTier2 + `cluster {
  node_id = "n1"
  raft_addr = "127.0.0.1:1"
  peers = ["n1=127.0.0.1:1"]
  join = "127.0.0.1:7401"
}`, "not both"},
		{"bad peer", noTier2 + `cluster {
  node_id = "n1"
  raft_addr = "127.0.0.1:1"
  peers = ["n1"]
}`, "want id=host:port"},
		{"bad id", noTier2 + `cluster { node_id = "-x" }`, "starting with a letter or digit"},
		{"retention without tier 2", `tier2 { enabled = false }
retention { max_age = "24h" }
cluster {
  node_id = "n1"
  raft_addr = "127.0.0.1:1"
}`, "retention.max_age"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.src, nil)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
