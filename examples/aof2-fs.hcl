# AOF2 host, single node, tier 2 on the local file system (the fs plugin).
# Every value below is the default unless marked otherwise; delete what you
# do not change. `aof2-host serve -h` lists every key, its AOF2_* variable
# and its flag. Run: aof2-host serve -config examples/aof2-fs.hcl

data_dir   = "./data"
log_level  = "info"
log_format = "auto" # JSON when stderr is not a terminal

# Where aof2-plugin-fs lives; empty means next to the aof2-host binary.
plugin_dir = ""

listen {
  grpc = "127.0.0.1:7400"
  http = "127.0.0.1:7401"

  # Listening beyond loopback needs a token or TLS (or an explicit
  # allow_insecure_remote = true). Keep the token out of this file:
  # auth_token_file = "/etc/aof2/token"
  # or: AOF2_LISTEN_AUTH_TOKEN=… in the environment.
  #
  # tls {
  #   cert_file      = "/etc/aof2/tls/server.crt"
  #   key_file       = "/etc/aof2/tls/server.key"
  #   client_ca_file = "/etc/aof2/tls/clients-ca.crt" # require client certs
  # }
}

segment {
  size                = "64MiB"  # power of two, 1MiB to 1GiB
  sync                = "always" # always | interval | none
  flush_interval      = "10ms"   # used by sync = "interval"
  max_unflushed_bytes = "64MiB"
  # One write-ahead log for all streams: one sync acknowledges every
  # stream's appends (docs/adr-node-wal.md). Opt-in; needs sync = "always".
  # node_wal             = true
  # wal_checkpoint_bytes = "64MiB"
}

manifest {
  log_only        = false # tier1_manifest_log_only (docs/formats.md#warmmanifestjson); also AOF2_MANIFEST_LOG_ONLY=1
  chunk_capacity  = "256KiB"
  rotation_period = "250ms"
}

tier0 {
  max_bytes = "8GiB" # not a default (0 = unlimited)

  # Evict what tier 2 holds once the data disk is 90 % full, down to 85 %
  # (not a default: 0% = off; ENOSPC evicts anyway; docs/tiering.md#disk-pressure).
  disk_high_watermark = "90%"

  # A larger cap for one busy stream (not a default).
  stream "42" {
    max_bytes = "2GiB"
  }
}

tier1 {
  max_bytes        = "4GiB" # not a default (0 = unlimited)
  frame_size       = "256KiB"
  level            = "fastest"
  compress_workers = 1
  hydrate_workers  = 1
}

tier2 {
  plugin = "fs"
  # Pin the binary: sha256sum aof2-plugin-fs
  # sha256 = "…64 hex digits…"

  settings = {
    # Absolute, or relative to the working directory. The default is
    # <data_dir>/tier2; point it at another disk or a network mount.
    root = "./data/tier2"
  }
}

# Retention deletes from every tier; it is off by default.
# retention {
#   max_age   = "720h"
#   max_bytes = "10GiB"
# }

coordinator {
  workers       = 2
  scan_interval = "1s"
  job_timeout   = "5m"
}

# The scrubber checks every copy of every sealed segment (tier-0 files,
# warm artifacts, tier-2 objects) against the manifest and repairs from a
# verified copy (docs/tiering.md#healing). interval 0 turns the background
# pass off (aof2-host scrub still runs one); bytes_per_second -1 unpaces it;
# tier2_sample is the share of objects checked by HEAD, tier2_full_get_bytes
# the object bytes per pass downloaded and verified in full (0: none).
# scrub {
#   interval             = "24h"
#   bytes_per_second     = "32MiB"
#   tier2_sample         = "100%"
#   tier2_full_get_bytes = "1GiB"
# }

# What clients can make the node hold. 0 streams means no limit. A read
# returns read_default_bytes when it gives no max_bytes and never more than
# read_max_bytes (a larger max_bytes is clamped); all reads together hold
# at most read_inflight_bytes, and wait for room beyond it.
# limits {
#   max_streams         = 10000
#   read_default_bytes  = "4MiB"
#   read_max_bytes      = "16MiB"
#   read_inflight_bytes = "64MiB"
# }

# Span sampling when OpenTelemetry tracing is on (OTEL_* variables).
# tracing {
#   append_every = 1024
# }
