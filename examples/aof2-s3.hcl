# AOF2 host with tier 2 on Amazon S3 or an S3-compatible store (MinIO,
# Ceph, R2…) through aof2-plugin-s3. Only the keys that differ from the
# defaults are set; see aof2-fs.hcl for the rest.
#
# Credentials never go in this file. The plugin runs with a minimal
# environment, so pass the standard AWS variables through env_allow and
# let the SDK's default chain find them (environment, ~/.aws via HOME and
# AWS_PROFILE, web identity, ECS or EC2 instance roles).

data_dir = "/var/lib/aof2"

tier2 {
  plugin = "s3"
  prefix = "prod/aof2" # object keys become prod/aof2/streams/…

  env_allow = [
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
  ]

  settings = {
    bucket = "my-aof2-bucket"
    region = "eu-west-1"
    sse    = "sse-s3" # none | sse-s3 | sse-kms (with sse_kms_key_id) | sse-c (with sse_c_key)

    # Large segments go up as parallel multipart uploads.
    part_size           = "8MiB"
    multipart_threshold = "8MiB"
    concurrency         = 4
    # The SDK sends each request once (max_attempts = 1, the default):
    # tier 2 retries with backoff and a breaker (tier2.retry_*), and SDK
    # retries would multiply its attempts.

    # S3-compatible stores and local emulators:
    # endpoint   = "http://127.0.0.1:9000"
    # path_style = true
    #
    # Explicit keys instead of the default chain, read from the host's
    # environment when the file is loaded:
    # access_key_id     = env("AOF2_S3_ACCESS_KEY")
    # secret_access_key = env("AOF2_S3_SECRET_KEY")
  }
}

# Keep 30 days or 10 GiB per stream, whichever is hit first.
retention {
  max_age   = "720h"
  max_bytes = "10GiB"
}
