# AOF2 host with tier 2 on Google Cloud Storage through aof2-plugin-gcs.
# Only the keys that differ from the defaults are set; see aof2-fs.hcl for
# the rest.
#
# Credentials never go in this file: the plugin uses Application Default
# Credentials. GOOGLE_APPLICATION_CREDENTIALS is passed through env_allow;
# on GCE/GKE the metadata server is used without it.

data_dir = "/var/lib/aof2"

tier2 {
  plugin    = "gcs"
  env_allow = ["GOOGLE_APPLICATION_CREDENTIALS"]

  settings = {
    bucket       = "my-aof2-bucket"
    prefix       = "prod/aof2" # applied by the plugin, below any tier2.prefix
    chunk_size   = "8MiB"      # resumable upload chunk
    # The SDK sends each request once (max_attempts = 1, the default):
    # tier 2 retries with backoff and a breaker (tier2.retry_*), and SDK
    # retries would multiply its attempts.

    # A service-account key file instead of ADC:
    # credentials_file = "/etc/aof2/gcs-sa.json"
    #
    # The fake-gcs-server emulator:
    # endpoint = "http://127.0.0.1:4443"
    # no_auth  = true
  }
}
