# Node 1 of a three-node cluster on one machine (make cluster).
# docs/adr-replication.md; runbook: deploy/README.md, "A replicated cluster".
data_dir = "./cluster-data/n1"

# Every node names the same tier 2; only the leader uploads to it.
tier2 {
  plugin = "fs"
  settings = {
    root = "./cluster-data/tier2"
  }
}

listen {
  grpc = "127.0.0.1:7510"
  http = "127.0.0.1:7511"
}

cluster {
  node_id   = "n1"
  raft_addr = "127.0.0.1:7512"
  peers     = ["n1=127.0.0.1:7512", "n2=127.0.0.1:7522", "n3=127.0.0.1:7532"]
}
