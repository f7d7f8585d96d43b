# AOF2 host with tier 2 on Azure Blob Storage through aof2-plugin-azure.
# Only the keys that differ from the defaults are set; see aof2-fs.hcl for
# the rest.
#
# Credentials never go in this file. With no account_key or sas_token the
# plugin uses DefaultAzureCredential (managed identity, workload identity
# or a service principal), whose variables pass through env_allow.

data_dir = "/var/lib/aof2"

tier2 {
  plugin = "azure"
  env_allow = [
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
  ]

  settings = {
    account   = "myaccount"
    container = "aof2"
    prefix    = "prod" # applied by the plugin, below any tier2.prefix

    block_size   = "8MiB" # staged block size of large uploads
    concurrency  = 4
    # The SDK sends each request once (max_attempts = 1, the default):
    # tier 2 retries with backoff and a breaker (tier2.retry_*), and SDK
    # retries would multiply its attempts.

    # A shared key or SAS token read from the host's environment when the
    # file is loaded (set only one):
    # account_key = env("AZURE_STORAGE_KEY")
    # sas_token   = env("AZURE_STORAGE_SAS_TOKEN")
    #
    # Azurite or another emulator: a connection string replaces account,
    # account_key, sas_token and endpoint.
    # connection_string = env("AOF2_AZURE_CONNECTION_STRING")
  }
}
