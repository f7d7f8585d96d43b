package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/internal/testcert"
)

func TestDefaultsAreAWorkingSingleNode(t *testing.T) {
	bin := t.TempDir()
	fakePlugin(t, bin, "fs")
	c, err := Load(nil, nil, WithDefaultFile(""), WithExecutable(func() (string, error) {
		return filepath.Join(bin, "aof2-host"), nil
	}))
	require.NoError(t, err)

	require.Equal(t, inWD(t, "data"), c.DataDir)
	require.Equal(t, "127.0.0.1:7400", c.Listen.GRPC)
	require.Equal(t, "127.0.0.1:7401", c.Listen.HTTP)
	require.True(t, IsLoopback(c.Listen.GRPC) && IsLoopback(c.Listen.HTTP))
	require.True(t, c.Tier2Enabled())
	require.Equal(t, "fs", c.Tier2.Plugin)
	require.Equal(t, inWD(t, "data", "tier2"), c.Tier2.Settings["root"])
	require.Empty(t, c.Token())
	tc, err := c.TLSConfig()
	require.NoError(t, err)
	require.Nil(t, tc)

	launch, err := c.PluginLaunch()
	require.NoError(t, err)
	require.Equal(t, filepath.Join(bin, "aof2-plugin-fs"), launch.Path)
	wd, err := os.Getwd()
	require.NoError(t, err)
	require.Equal(t, filepath.Join(wd, "data"), launch.Configure.StagingDir)
	require.Equal(t, filepath.Join(wd, "data", "tier2"), launch.Configure.Config["root"])

	require.Equal(t, core.SyncAlways, c.CoreConfig().Sync)
	require.Equal(t, int64(64<<20), c.CoreConfig().SegmentSize)
	require.Equal(t, budget.PolicyTier2, c.CoordinatorConfig().Tier0.Policy)
	require.Equal(t, inWD(t, "data"), c.CoordinatorConfig().DataDir)
	so := c.ServerOptions()
	require.Equal(t, server.Options{MaxRecordSize: int(segment.MaxRecordSize(segment.DefaultCapacity)),
		ReadDefaultBytes: server.DefaultReadBytes, ReadMaxBytes: server.DefaultReadMaxBytes, ReadBudgetBytes: server.DefaultReadBudgetBytes, ReadStallTimeout: server.DefaultReadStallTimeout}, so)

	d := Defaults()
	require.Equal(t, "./data", d.DataDir, "the built-in value as written")
	require.NoError(t, d.absPaths())
	require.Equal(t, c.HCL(), d.HCL())
	for _, k := range keys {
		require.Equal(t, "default", c.Origin(k.path), k.path)
	}
}

func TestConfigFileSelection(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "custom.hcl", `data_dir = "/from/file"`)

	t.Run("flag", func(t *testing.T) {
		c := mustLoad(t, "", nil, "-config", path)
		require.Equal(t, "/from/file", c.DataDir)
		require.Equal(t, path, c.File)
	})
	t.Run("env", func(t *testing.T) {
		c := mustLoad(t, "", map[string]string{EnvConfig: path})
		require.Equal(t, "/from/file", c.DataDir)
	})
	t.Run("flag wins over env", func(t *testing.T) {
		other := writeFile(t, dir, "other.hcl", `data_dir = "/other"`)
		c := mustLoad(t, "", map[string]string{EnvConfig: path}, "-config", other)
		require.Equal(t, "/other", c.DataDir)
	})
	t.Run("implicit default file", func(t *testing.T) {
		c, err := Load(nil, nil, WithDefaultFile(path), SkipPluginLookup())
		require.NoError(t, err)
		require.Equal(t, "/from/file", c.DataDir)
	})
	t.Run("no default file means defaults", func(t *testing.T) {
		c, err := Load(nil, nil, WithDefaultFile(filepath.Join(dir, "absent.hcl")), SkipPluginLookup())
		require.NoError(t, err)
		require.Equal(t, inWD(t, "data"), c.DataDir)
		require.Empty(t, c.File)
	})
	for name, args := range map[string][]string{
		"missing -config":     {"-config", filepath.Join(dir, "absent.hcl")},
		"missing AOF2_CONFIG": nil,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(args, []string{EnvConfig + "=" + filepath.Join(dir, "absent.hcl")}, WithDefaultFile(""), SkipPluginLookup())
			require.ErrorIs(t, err, os.ErrNotExist)
			require.ErrorIs(t, err, types.ErrInvalidConfig)
			require.ErrorContains(t, err, "absent.hcl")
		})
	}
}

// samples gives three valid values per key, for the file, the
// environment and the flags, each in the form the key renders it.
func samples(t *testing.T) map[string][3]string {
	dir := t.TempDir()
	cert, key := testcert.Files(t, dir)
	tok := [3]string{writeFile(t, dir, "t1", "a\n"), writeFile(t, dir, "t2", "b"), writeFile(t, dir, "t3", " c ")}
	return map[string][3]string{
		"data_dir":                       {"/d1", "/d2", "/d3"},
		"log_level":                      {"debug", "warn", "error"},
		"role":                           {"writer", "replica", "writer"},
		"replica.poll_interval":          {"1ms", "1s", "1m"},
		"replica.list_interval":          {"1s", "1m", "1h"},
		"log_format":                     {"json", "text", "auto"},
		"plugin_dir":                     {"/p1", "/p2", "/p3"},
		"listen.grpc":                    {"127.0.0.1:1", "localhost:2", "[::1]:3"},
		"listen.http":                    {"127.0.0.1:4", "localhost:5", "[::1]:6"},
		"listen.auth_token":              {"tok1", "tok2", "tok3"},
		"listen.auth_token_file":         tok,
		"listen.allow_insecure_remote":   {"true", "false", "true"},
		"listen.admin":                   {"127.0.0.1:7", "localhost:8", "[::1]:9"},
		"listen.metrics_auth":            {"true", "false", "true"},
		"listen.metrics_max_streams":     {"100", "-1", "0"},
		"listen.tls.cert_file":           {cert, cert, cert},
		"listen.tls.key_file":            {key, key, key},
		"listen.tls.client_ca_file":      {cert, cert, cert},
		"segment.size":                   {"1MiB", "128MiB", "1GiB"},
		"segment.initial_size":           {"64KiB", "1MiB", "128KiB"},
		"segment.target_bytes":           {"1MiB", "2MiB", "3MiB"},
		"segment.sync":                   {"interval", "none", "always"},
		"segment.flush_interval":         {"1ms", "2s", "1m30s"},
		"segment.flush_bytes":            {"1KiB", "2KiB", "3KiB"},
		"segment.max_unflushed_bytes":    {"1MiB", "-1", "3MiB"},
		"segment.node_wal":               {"true", "false", "true"},
		"segment.wal_checkpoint_bytes":   {"1MiB", "2MiB", "64MiB"},
		"segment.write_mode":             {"mmap", "pwrite", "mmap"},
		"segment.preparation":            {"small-pages", "large-folios", "fallocate"},
		"manifest.log_only":              {"true", "false", "true"},
		"manifest.chunk_capacity":        {"16KiB", "64KiB", "1MiB"},
		"manifest.rotation_period":       {"1ms", "-1s", "1h"},
		"manifest.snapshot_every_bytes":  {"16KiB", "-1", "1MiB"},
		"manifest.view_interval":         {"1ms", "-1s", "1h"},
		"tier0.max_bytes":                {"1GiB", "2GiB", "3GiB"},
		"tier0.stream_max_bytes":         {"1MiB", "2MiB", "3MiB"},
		"tier0.policy":                   {"tier1", "tier2", "auto"},
		"tier0.stream.max_bytes":         {"1MiB", "2MiB", "0"},
		"tier0.disk_high_watermark":      {"90%", "97.5%", "0%"},
		"tier0.disk_low_watermark":       {"80%", "85.5%", "0%"},
		"tier1.max_bytes":                {"1GiB", "2GiB", "0"},
		"tier1.min_residency":            {"1s", "2m", "3h"},
		"tier1.frame_size":               {"64KiB", "1MiB", "16MiB"},
		"tier1.level":                    {"default", "better", "best"},
		"tier1.compress_workers":         {"2", "3", "1024"},
		"tier1.hydrate_workers":          {"2", "3", "4"},
		"tier1.queue_depth":              {"1", "2", "3"},
		"tier1.verify":                   {"full", "quick", "full"},
		"tier2.enabled":                  {"false", "true", "false"},
		"tier2.plugin":                   {"s3", "gcs", "my_backend-2"},
		"tier2.sha256":                   {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"},
		"tier2.prefix":                   {"a", "b/c", "d/e/"},
		"tier2.max_concurrency":          {"1", "2", "3"},
		"tier2.attempt_timeout":          {"1s", "2s", "3s"},
		"tier2.retry_attempts":           {"1", "2", "100"},
		"tier2.reserve_segments":         {"1", "16", "1024"},
		"tier2.retry_initial":            {"1ms", "2ms", "3ms"},
		"tier2.retry_max":                {"1s", "2s", "3s"},
		"tier2.breaker_threshold":        {"1", "2", "3"},
		"tier2.breaker_cooldown":         {"1s", "2s", "3s"},
		"tier2.disable_auto_mtls":        {"true", "false", "true"},
		"tier2.start_timeout":            {"1s", "2s", "3s"},
		"tier2.env_allow":                {"A", "B,C", "D_1"},
		"tier2.settings":                 {"v1", "v2", "v3"},
		"retention.max_age":              {"1h", "720h", "1m"},
		"retention.max_bytes":            {"1GiB", "10GiB", "0"},
		"coordinator.workers":            {"1", "2", "3"},
		"tracing.append_every":           {"1", "-1", "4096"},
		"cluster.node_id":                {"n1", "node-2", "n3.a"},
		"cluster.raft_addr":              {"127.0.0.1:1", "localhost:2", "[::1]:3"},
		"cluster.peers":                  {"n1=127.0.0.1:9", "n1=127.0.0.1:9,n2=127.0.0.1:8", "n3=[::1]:7,n1=127.0.0.1:9"},
		"cluster.join":                   {"127.0.0.1:4", "localhost:5", "[::1]:6"},
		"cluster.data":                   {"/c1", "/c2", "/c3"},
		"cluster.log_store":              {"wal", "boltdb", "auto"},
		"cluster.election_timeout":       {"100ms", "1s", "5s"},
		"cluster.snapshot_threshold":     {"1", "8192", "100000"},
		"cluster.snapshot_interval":      {"10ms", "2m", "1h"},
		"cluster.trailing_logs":          {"1", "10240", "100000"},
		"cluster.advertise_grpc":         {"10.0.0.1:1", "a.example:2", "[::1]:3"},
		"cluster.advertise_http":         {"10.0.0.1:4", "a.example:5", "[::1]:6"},
		"coordinator.scan_interval":      {"1s", "2s", "3s"},
		"coordinator.job_timeout":        {"1m", "2m", "3m"},
		"scrub.interval":                 {"1h", "0s", "168h"},
		"scrub.bytes_per_second":         {"1MiB", "-1", "1GiB"},
		"scrub.tier2_sample":             {"10%", "0%", "100%"},
		"scrub.tier2_full_get_bytes":     {"0", "64MiB", "10GiB"},
		"limits.max_streams":             {"1", "10000", "0"},
		"limits.read_default_bytes":      {"1MiB", "64KiB", "16MiB"},
		"limits.read_max_bytes":          {"4MiB", "64MiB", "1GiB"},
		"limits.read_inflight_bytes":     {"1MiB", "256MiB", "2GiB"},
		"limits.read_stall_timeout":      {"1s", "2m", "0s"},
		"segment.max_age":                {"1s", "0s", "24h"},
		"manifest.snapshot_every_chunks": {"1", "-1", "1000"},
	}
}

// companion is what a key needs beside it to validate: the other half
// of a TLS pair and so on.
func companion(k *key, s map[string][3]string) map[string]string {
	switch k.path {
	case "listen.tls.cert_file", "listen.tls.client_ca_file":
		return map[string]string{"listen.tls.cert_file": s["listen.tls.cert_file"][0], "listen.tls.key_file": s["listen.tls.key_file"][0]}
	case "listen.tls.key_file":
		return map[string]string{"listen.tls.cert_file": s["listen.tls.cert_file"][0]}
	case "listen.metrics_auth":
		return map[string]string{"listen.auth_token": "t"}
	case "cluster.node_id":
		return map[string]string{"cluster.raft_addr": "127.0.0.1:9", "tier2.enabled": "false"}
	case "cluster.raft_addr", "cluster.data", "cluster.log_store", "cluster.election_timeout", "cluster.snapshot_threshold", "cluster.snapshot_interval", "cluster.trailing_logs", "cluster.advertise_grpc", "cluster.advertise_http", "cluster.peers", "cluster.join":
		return map[string]string{"cluster.node_id": "n1", "cluster.raft_addr": "127.0.0.1:9", "tier2.enabled": "false"}
	}
	return nil
}

// fileFor writes the companions and, unless v is nil, one value of k as HCL.
func fileFor(k *key, v *string, extra map[string]string) string {
	root := &hclBlock{}
	for path, val := range extra {
		if path != k.path || v == nil {
			root.block(parentPath(path)).attr(path[len(parentPath(path))+1:], hclString(val))
		}
	}
	if v != nil {
		switch {
		case k.labelled != "":
			b := &hclBlock{header: `stream "7"`}
			b.attr("max_bytes", hclString(*v))
			t0 := root.block("tier0")
			t0.children = append(t0.children, b)
		case k.kind == kindEntries:
			root.block("tier2").attr("settings", "{ bucket = "+hclString(*v)+" }")
		case k.kind == kindList:
			root.block(k.section()).attr(k.attr(), "["+hclString(*v)+"]")
		default:
			root.block(k.section()).attr(k.attr(), hclString(*v))
		}
	}
	var b strings.Builder
	root.write(&b, "")
	return b.String()
}

func envFor(k *key, v string) (string, string) {
	switch {
	case k.labelled != "":
		return "AOF2_TIER0_STREAM_7_MAX_BYTES", v
	case k.kind == kindEntries:
		return "AOF2_TIER2_SETTINGS_BUCKET", v
	}
	return k.envName(), v
}

func flagFor(k *key, v string) []string {
	switch {
	case k.labelled != "":
		return []string{"-" + k.flagName(), "7.max_bytes=" + v}
	case k.kind == kindEntries:
		return []string{"-" + k.flagName(), "bucket=" + v}
	}
	return []string{"-" + k.flagName() + "=" + v}
}

// value reads k back from c in its canonical form.
func value(k *key, c *Config) (string, string) {
	switch {
	case k.labelled != "":
		return k.entries(c)["7"], "tier0.stream.7.max_bytes"
	case k.kind == kindEntries:
		return k.entries(c)["bucket"], "tier2.settings.bucket"
	}
	return k.get(c), k.path
}

func TestEveryKeyBySourceAndPrecedence(t *testing.T) {
	s := samples(t)
	require.Len(t, s, len(keys), "every key needs samples")
	for _, k := range keys {
		v, ok := s[k.path]
		require.True(t, ok, "no samples for %s", k.path)
		t.Run(k.path, func(t *testing.T) {
			if k.path == "listen.auth_token" {
				v = [3]string{"tok1", "tok2", "tok3"}
			}
			file := fileFor(k, &v[0], companion(k, s))
			base := fileFor(k, nil, companion(k, s))
			envName, envVal := envFor(k, v[1])
			env := map[string]string{envName: envVal}
			args := flagFor(k, v[2])

			want := func(c *Config, i int, origin string) {
				t.Helper()
				got, path := value(k, c)
				require.Equal(t, v[i], got)
				require.Contains(t, c.Origin(path), origin)
			}
			c := mustLoad(t, file, nil)
			want(c, 0, "aof2.hcl:")
			c = mustLoad(t, file, env)
			want(c, 1, "env "+envName)
			c = mustLoad(t, file, env, args...)
			want(c, 2, "flag -"+k.flagName())
			c = mustLoad(t, base, env)
			want(c, 1, "env "+envName)
			c = mustLoad(t, base, nil, args...)
			want(c, 2, "flag -"+k.flagName())
		})
	}
}

func TestFileNativeTypes(t *testing.T) {
	c := mustLoad(t, `
segment {
  size        = 1048576
  flush_bytes = 4096
}
tier1 { compress_workers = 4 }
manifest { log_only = true }
listen { allow_insecure_remote = "yes" }
tier2 {
  env_allow = ["AWS_PROFILE", "AWS_REGION"]
  settings  = { concurrency = 4, path_style = true, bucket = "b" }
}
`, nil)
	require.Equal(t, int64(1<<20), c.Segment.Size)
	require.Equal(t, int64(4096), c.Segment.FlushBytes)
	require.Equal(t, 4, c.Tier1.CompressWorkers)
	require.True(t, c.Manifest.LogOnly)
	require.True(t, c.Listen.AllowInsecureRemote)
	require.Equal(t, []string{"AWS_PROFILE", "AWS_REGION"}, c.Tier2.EnvAllow)
	require.Equal(t, map[string]string{"concurrency": "4", "path_style": "true", "bucket": "b", "root": inWD(t, "data", "tier2")}, c.Tier2.Settings)
}

func TestEnvFunctionAndEmptyVariables(t *testing.T) {
	c := mustLoad(t, `
tier2 {
  plugin   = "s3"
  settings = { secret_access_key = env("MY_SECRET"), region = env("UNSET_VAR") }
}
`, map[string]string{"MY_SECRET": "s3cr3t", "AOF2_SEGMENT_SIZE": "", "AOF2_DATA_DIR": ""})
	require.Equal(t, "s3cr3t", c.Tier2.Settings["secret_access_key"])
	require.Equal(t, "", c.Tier2.Settings["region"])
	require.Equal(t, int64(64<<20), c.Segment.Size, "an empty variable counts as unset")
	require.Equal(t, inWD(t, "data"), c.DataDir)
}

func TestFlagsLaterWins(t *testing.T) {
	c := mustLoad(t, "", nil, "-segment-size", "2MiB", "-segment-size=4MiB", "-manifest-log-only",
		"-tier2-settings", "a=1", "-tier2-settings", "b=x=y", "-tier0-stream", "1.max_bytes=1KiB", "-tier0-stream", "2.max_bytes=2KiB")
	require.Equal(t, int64(4<<20), c.Segment.Size)
	require.True(t, c.Manifest.LogOnly)
	require.Equal(t, "1", c.Tier2.Settings["a"])
	require.Equal(t, "x=y", c.Tier2.Settings["b"])
	require.Equal(t, map[uint64]int64{1: 1024, 2: 2048}, c.Tier0.Streams)
}

func TestManifestLogOnlyEnv(t *testing.T) {
	// AOF2_MANIFEST_LOG_ONLY is core/manifest's variable and our key's:
	// one reading, the same words.
	for v, want := range map[string]bool{"1": true, "true": true, "on": true, "0": false, "false": false, "off": false} {
		c := mustLoad(t, "manifest { log_only = true }\n", map[string]string{"AOF2_MANIFEST_LOG_ONLY": v})
		require.Equal(t, want, c.Manifest.LogOnly, v)
		require.Equal(t, want, c.CoreConfig().Manifest.LogOnly, v)
	}
}

func TestHelpAndArguments(t *testing.T) {
	_, err := Load([]string{"-h"}, nil, WithDefaultFile(""))
	require.ErrorIs(t, err, flag.ErrHelp)

	_, err = Load([]string{"extra"}, nil, WithDefaultFile(""), SkipPluginLookup())
	require.ErrorContains(t, err, `unexpected argument "extra"`)

	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	own := fs.Bool("own", false, "a command's own flag")
	c, err := Load([]string{"-own", "-data-dir", "/x", "rest"}, nil, WithFlagSet(fs), WithDefaultFile(""), SkipPluginLookup())
	require.NoError(t, err)
	require.True(t, *own)
	require.Equal(t, "/x", c.DataDir)
	require.Equal(t, []string{"rest"}, fs.Args())
}

func TestHCLRoundTrip(t *testing.T) {
	s := samples(t)
	c := mustLoad(t, `
data_dir = "/srv/aof2"
listen {
  grpc            = "0.0.0.0:7400"
  auth_token_file = "`+s["listen.auth_token_file"][0]+`"
}
segment {
  size                = "128MiB"
  sync                = "interval"
  max_unflushed_bytes = -1
}
manifest { rotation_period = "-1s" }
tier0 {
  max_bytes = "1.5GiB"
  stream "3" { max_bytes = "1GiB" }
  stream "18446744073709551615" { max_bytes = 0 }
}
tier2 {
  plugin    = "s3"
  env_allow = ["AWS_PROFILE"]
  settings  = { bucket = "b\"$${x}%%{y}\\", secret_access_key = "hidden" }
}
retention { max_age = "720h" }
coordinator { job_timeout = "1h30m" }
`, nil)
	out := c.HCL()
	require.NotContains(t, out, "hidden")
	require.Contains(t, out, "settings.secret_access_key is set")

	back := mustLoad(t, out, nil)
	delete(c.Tier2.Settings, "secret_access_key")
	require.Equal(t, c.HCL(), back.HCL())
	require.Equal(t, exported(c), exported(back))

	withToken := mustLoad(t, "", map[string]string{"AOF2_LISTEN_AUTH_TOKEN": "t0ps3cret"})
	require.NotContains(t, withToken.HCL(), "t0ps3cret")
	require.Contains(t, withToken.HCL(), "auth_token is set")
}

// exported drops what Load keeps besides the values.
func exported(c *Config) Config {
	e := *c
	e.origins, e.opts, e.File, e.token, e.pluginPath = nil, options{}, "", "", ""
	return e
}

func TestErrorsAreTyped(t *testing.T) {
	_, err := load(t, `segment { size = "3MiB" }`, nil)
	var ce *Error
	require.True(t, errors.As(err, &ce))
	require.Equal(t, "segment.size", ce.Key)
	require.Equal(t, `"3MiB"`, ce.Value)
	require.Contains(t, ce.Source, "aof2.hcl:1:")
	require.ErrorIs(t, err, types.ErrInvalidConfig)
}

func TestConversions(t *testing.T) {
	c := mustLoad(t, `
segment {
  size         = "8MiB"
  target_bytes = "4MiB"
  sync         = "interval"
  write_mode   = "mmap"
  preparation  = "small-pages"
}
manifest {
  chunk_capacity  = "64KiB"
  rotation_period = "1s"
  view_interval   = "5s"
}
tier0 {
  max_bytes = "1GiB"
  policy    = "tier1"
  stream "9" { max_bytes = "64MiB" }
  disk_high_watermark = 90
  disk_low_watermark  = "82.5%"
}
tier1 {
  frame_size = "1MiB"
  level      = "best"
  verify     = "full"
}
tier2 {
  prefix          = "p"
  attempt_timeout = "30s"
  retry_attempts  = 3
}
retention { max_bytes = "10GiB" }
coordinator { workers = 4 }
limits {
  max_streams         = 10000
  read_default_bytes  = "1MiB"
  read_max_bytes      = "8MiB"
  read_inflight_bytes = "1GiB"
}
tracing { append_every = 64 }
`, nil)
	cc := c.CoreConfig()
	require.Equal(t, int64(8<<20), cc.SegmentSize)
	require.Equal(t, int64(4<<20), cc.SegmentTargetBytes)
	require.Equal(t, core.SyncInterval, cc.Sync)
	require.Equal(t, "mmap", cc.WriteMode.String())
	require.Equal(t, "small-pages", cc.Preparation.String())
	require.Equal(t, int64(64<<10), cc.Manifest.ChunkCapacity)
	require.Equal(t, time.Second, cc.Manifest.RotationPeriod)
	require.Equal(t, 5*time.Second, cc.Manifest.ViewInterval)
	require.Equal(t, 64, cc.TraceAppendEvery)
	require.Equal(t, 10000, cc.MaxStreams)

	so := c.ServerOptions()
	require.Equal(t, int64(1<<20), so.ReadDefaultBytes)
	require.Equal(t, int64(8<<20), so.ReadMaxBytes)
	require.Equal(t, int64(1<<30), so.ReadBudgetBytes)
	require.Equal(t, int(segment.MaxRecordSize(8<<20)), so.MaxRecordSize)

	co := c.CoordinatorConfig()
	require.Equal(t, int64(1<<30), co.Tier0.MaxBytes)
	require.Equal(t, budget.PolicyTier1, co.Tier0.Policy)
	require.Equal(t, map[types.StreamID]int64{9: 64 << 20}, co.Tier0.StreamLimits)
	require.InDelta(t, 0.9, co.Disk.HighWatermark, 1e-12)
	require.InDelta(t, 0.825, co.Disk.LowWatermark, 1e-12)
	require.Equal(t, 1<<20, co.Tier1.Options.FrameSize)
	require.Equal(t, "best", co.Tier1.Options.Level.String())
	require.Equal(t, int64(10<<30), co.Retention.MaxBytes)
	require.Equal(t, 4, co.Workers)
	require.Nil(t, co.Tier2)

	t2 := c.Tier2Config()
	require.Equal(t, "p", t2.Prefix)
	require.Equal(t, 30*time.Second, t2.AttemptTimeout)
	require.Equal(t, 3, t2.Backoff.Attempts)

	require.True(t, c.JSONLogs(false))
	require.False(t, c.JSONLogs(true))
	noTier2 := mustLoad(t, `tier2 { enabled = false }`, nil)
	require.Equal(t, budget.PolicyTier1, noTier2.CoordinatorConfig().Tier0.Policy)
	require.False(t, noTier2.Tier2Enabled())
	_, err := noTier2.PluginLaunch()
	require.ErrorContains(t, err, "tier2.plugin")
}

func TestInitialSegmentSize(t *testing.T) {
	c := mustLoad(t, `segment { size = "1MiB" }`, nil)
	require.Equal(t, int64(64<<10), c.Segment.InitialSize, "streams start at 64 KiB by default")
	require.Equal(t, int64(64<<10), c.CoreConfig().InitialSegmentSize)
	for _, bad := range []string{`"32KiB"`, `"96KiB"`} {
		_, err := load(t, `segment { initial_size = `+bad+` }`, nil)
		var ce *Error
		require.True(t, errors.As(err, &ce), bad)
		require.Equal(t, "segment.initial_size", ce.Key)
	}
	_, err := load(t, "segment {\n  size = \"1MiB\"\n  initial_size = \"2MiB\"\n}", nil)
	var ce *Error
	require.True(t, errors.As(err, &ce))
	require.Equal(t, "segment.initial_size", ce.Key)
	require.Contains(t, ce.Error(), "must not exceed segment.size")
}

// A cluster member's store syncs only at seals, snapshots and its
// unflushed bound unless segment.sync is set: the Raft log made the
// records durable first.
func TestClusterStoreSyncDefaultsToNone(t *testing.T) {
	env := map[string]string{"AOF2_CLUSTER_NODE_ID": "n1", "AOF2_CLUSTER_RAFT_ADDR": "127.0.0.1:9", "AOF2_TIER2_ENABLED": "false"}
	c := mustLoad(t, "", env)
	require.Equal(t, core.SyncNone, c.CoreConfig().Sync)
	env["AOF2_SEGMENT_SYNC"] = "always"
	c = mustLoad(t, "", env)
	require.Equal(t, core.SyncAlways, c.CoreConfig().Sync, "set explicitly")
}
