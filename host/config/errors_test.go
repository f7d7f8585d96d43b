package config

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
)

func TestFileRefusesUnknownAndMisplacedKeys(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"unknown top-level key", "data_dir = \"/x\"\nbogus = 1\n", []string{"aof2.hcl:2:1", "bogus: unknown key", "known at the top level: cluster { }, coordinator { }, data_dir"}},
		{"unknown key in block", "segment {\n  sise = \"1MiB\"\n}\n", []string{"aof2.hcl:2:3", "segment.sise: unknown key", "known in segment:", "size"}},
		{"unknown block", "nosuch {\n}\n", []string{"aof2.hcl:1:1", "nosuch: unknown block"}},
		{"unknown nested block", "listen {\n  tsl {\n  }\n}\n", []string{"aof2.hcl:2:3", "listen.tsl: unknown block", "tls { }"}},
		{"block written as attribute", "listen {\n  tls = {}\n}\n", []string{"aof2.hcl:2:3", "listen.tls: is a block"}},
		{"attribute written as block", "data_dir {\n}\n", []string{"aof2.hcl:1:1", "data_dir: is an attribute"}},
		{"label on a plain block", "segment \"x\" {\n}\n", []string{"aof2.hcl:1:1", "segment: takes no label"}},
		{"stream without label", "tier0 {\n  stream {\n    max_bytes = 1\n  }\n}\n", []string{"aof2.hcl:2:3", "tier0.stream: takes one label"}},
		{"unknown key in stream", "tier0 {\n  stream \"1\" {\n    max_byte = 1\n  }\n}\n", []string{"aof2.hcl:3:5", "tier0.stream.max_byte: unknown key"}},
		{"bad stream id", "tier0 {\n  stream \"x\" {\n    max_bytes = 1\n  }\n}\n", []string{"aof2.hcl:3:17", "tier0.stream.x.max_bytes", `stream id "x"`}},
		{"repeated block", "segment {\n}\nsegment {\n}\n", []string{"aof2.hcl:3:1", "segment: block repeated", "first opened at", "aof2.hcl:1:1"}},
		{"repeated stream", "tier0 {\n  stream \"1\" {\n  }\n  stream \"1\" {\n  }\n}\n", []string{"aof2.hcl:4:3", "block repeated"}},
		{"duplicate attribute", "data_dir = \"a\"\ndata_dir = \"b\"\n", []string{"aof2.hcl:2:1", "Attribute redefined"}},
		{"syntax error", "segment {\n  size = \n}\n", []string{"aof2.hcl:"}},
		{"unknown variable", "data_dir = nope\n", []string{"aof2.hcl:1:12", "data_dir", "Variables not allowed"}},
		{"unknown function", "data_dir = file(\"x\")\n", []string{"aof2.hcl:1:12", "data_dir", "Call to unknown function"}},
		{"map where scalar wanted", "data_dir = { a = 1 }\n", []string{"data_dir", "want a string, number or bool"}},
		{"scalar where map wanted", "tier2 {\n  settings = \"x\"\n}\n", []string{"aof2.hcl:2:14", "tier2.settings", "want a map"}},
		{"scalar where list wanted", "tier2 {\n  env_allow = \"X\"\n}\n", []string{"tier2.env_allow", "want a list"}},
		{"nested value in list", "tier2 {\n  env_allow = [[\"X\"]]\n}\n", []string{"tier2.env_allow", "want a string"}},
		{"bad setting name", "tier2 {\n  settings = { Bucket = \"b\" }\n}\n", []string{"tier2.settings.Bucket", "lower-case"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.src, nil)
			require.ErrorIs(t, err, types.ErrInvalidConfig)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestFileReportsEveryBadKey(t *testing.T) {
	_, err := load(t, "bogus = 1\nsegment {\n  size = \"3MiB\"\n  sync = \"sometimes\"\n}\n", nil)
	require.ErrorContains(t, err, "aof2.hcl:1:1: bogus")
	require.ErrorContains(t, err, `aof2.hcl:3:10: segment.size = "3MiB"`)
	require.ErrorContains(t, err, `aof2.hcl:4:10: segment.sync = "sometimes"`)
}

// badValues are refused values; each is tried in the file, the
// environment and the flags.
var badValues = []struct {
	key, value, reason string
}{
	{"segment.size", "64XB", "want bytes as an integer"},
	{"segment.size", "3MiB", "power of two"},
	{"segment.size", "2GiB", "power of two"},
	{"segment.size", "1.5", "whole number"},
	{"segment.flush_interval", "10", "want a duration"},
	{"segment.flush_interval", "0s", "must be positive"},
	{"segment.flush_interval", "-1ms", "must not be negative"},
	{"segment.flush_bytes", "0", "at least 1"},
	{"segment.max_unflushed_bytes", "-2", "want bytes"},
	{"segment.sync", "sometimes", "one of always, interval, none"},
	{"tier0.disk_high_watermark", "101%", "0% to 100%"},
	{"tier0.disk_high_watermark", "ninety", "want a percentage"},
	{"tier0.disk_low_watermark", "-5%", "0% to 100%"},
	{"segment.write_mode", "mremap", "one of pwrite, mmap"},
	{"segment.preparation", "zero", "one of fallocate"},
	{"log_level", "loud", "one of trace, debug, info, warn, error"},
	{"log_format", "xml", "one of auto, json, text"},
	{"manifest.log_only", "maybe", "want true or false"},
	{"manifest.chunk_capacity", "18KiB", "multiple of 4KiB"},
	{"manifest.chunk_capacity", "2MiB", "multiple of 4KiB"},
	{"manifest.rotation_period", "2h", "1ms to 1h"},
	{"manifest.rotation_period", "0s", "1ms to 1h"},
	{"manifest.view_interval", "2h", "1ms to 1h"},
	{"manifest.view_interval", "0s", "1ms to 1h"},
	{"manifest.snapshot_every_bytes", "1KiB", "at least 16KiB"},
	{"tier0.max_bytes", "lots", "want bytes"},
	{"tier0.policy", "tier3", "one of auto, tier1, tier2"},
	{"tier1.frame_size", "1KiB", "want 64KiB to 16MiB"},
	{"tier1.level", "max", "one of fastest"},
	{"tier1.compress_workers", "0", "want 1 to 1024"},
	{"tier1.hydrate_workers", "two", "want an integer"},
	{"tier1.verify", "deep", "one of quick, full"},
	{"tier2.plugin", "../evil", "plugin name"},
	{"tier2.plugin", "S3", "plugin name"},
	{"tier2.sha256", "abc", "64 hex digits"},
	{"tier2.prefix", "/abs", "relative"},
	{"tier2.prefix", "a/../b", `".." segment`},
	{"tier2.max_concurrency", "0", "want 1 to 1024"},
	{"tier2.env_allow", "A,B=C", "not an environment variable name"},
	{"tier2.start_timeout", "0s", "must be positive"},
	{"listen.grpc", "7400", "want host:port"},
	{"listen.grpc", "127.0.0.1:http", "port must be a number"},
	{"listen.http", "127.0.0.1:70000", "port must be a number"},
	{"retention.max_age", "30d", "want a duration"},
	{"coordinator.workers", "-1", "want 1 to 1024"},
	{"coordinator.job_timeout", "0s", "must be positive"},
	{"tracing.append_every", "0", "want -1 (none) or at least 1"},
	{"data_dir", "a\x00b", "NUL"},
}

func TestBadValuesNameKeyValueAndSource(t *testing.T) {
	for _, tc := range badValues {
		k := keyByPath[tc.key]
		require.NotNil(t, k, tc.key)
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			v := tc.value
			wantValue := tc.key + " = " + hclString(v)
			if tc.key == "data_dir" {
				wantValue = tc.key + ` = "a\x00b"`
			}

			_, err := load(t, fileFor(k, &v, nil), nil)
			require.ErrorIs(t, err, types.ErrInvalidConfig)
			require.ErrorContains(t, err, "aof2.hcl:")
			if k.kind == kindList {
				require.ErrorContains(t, err, tc.key+": item "+hclString(v))
			} else {
				require.ErrorContains(t, err, wantValue)
			}
			require.ErrorContains(t, err, tc.reason)

			_, err = load(t, "", map[string]string{k.envName(): v})
			require.ErrorContains(t, err, "env "+k.envName()+": "+wantValue)
			require.ErrorContains(t, err, tc.reason)

			_, err = load(t, "", nil, "-"+k.flagName()+"="+v)
			require.ErrorContains(t, err, "flag -"+k.flagName()+": "+wantValue)
			require.ErrorContains(t, err, tc.reason)
		})
	}
}

func TestBadEntryFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-tier2-settings", "novalue"},
		{"-tier2-settings", "=x"},
		{"-tier0-stream", "7=1GiB"},
		{"-tier0-stream", "7.size=1GiB"},
		{"-tier0-stream", ".max_bytes=1GiB"},
	} {
		_, err := load(t, "", nil, args...)
		require.ErrorContains(t, err, "flag "+args[0], args)
		require.ErrorContains(t, err, "=VALUE", args)
	}
	_, err := load(t, "", nil, "-tier0-stream", "x.max_bytes=1GiB")
	require.ErrorContains(t, err, `tier0.stream.x.max_bytes = "1GiB": stream id "x"`)
	_, err = load(t, "", nil, "-tier0-stream", "1.max_bytes=big")
	require.ErrorContains(t, err, `flag -tier0-stream: tier0.stream.1.max_bytes = "big"`)
}

func TestEnvironment(t *testing.T) {
	t.Run("unknown variable under a section prefix", func(t *testing.T) {
		for _, name := range []string{"AOF2_SEGMENT_SIZ", "AOF2_TIER2_PLUGINS", "AOF2_LISTEN_TOKEN", "AOF2_TIER0_STREAM_X_MAX_BYTE"} {
			_, err := load(t, "", map[string]string{name: "1"})
			require.ErrorContains(t, err, name+": unknown configuration variable", name)
			require.ErrorIs(t, err, types.ErrInvalidConfig)
		}
	})
	t.Run("other AOF2 variables are left alone", func(t *testing.T) {
		c := mustLoad(t, "", map[string]string{
			"AOF2_S3_ENDPOINT": "http://x", "AOF2_CRASH_SEED": "1", "AOF2_PLUGIN_KILLS": "3",
			"AOF2_BACKEND_PLUGIN": "x", "AOF2_DATA_DIRECTORY": "x", "PATH": "/bin",
		})
		require.Equal(t, inWD(t, "data"), c.DataDir)
	})
	t.Run("entry variables", func(t *testing.T) {
		c := mustLoad(t, "", map[string]string{
			"AOF2_TIER2_SETTINGS_ROOT":         "/objects",
			"AOF2_TIER2_SETTINGS_MAX_ATTEMPTS": "5",
			"AOF2_TIER0_STREAM_42_MAX_BYTES":   "1GiB",
			"AOF2_TIER0_STREAM_MAX_BYTES":      "2GiB",
		})
		require.Equal(t, map[string]string{"root": "/objects", "max_attempts": "5"}, c.Tier2.Settings)
		require.Equal(t, map[uint64]int64{42: 1 << 30}, c.Tier0.Streams)
		require.Equal(t, int64(2<<30), c.Tier0.StreamMaxBytes)
		require.Equal(t, "env AOF2_TIER2_SETTINGS_ROOT", c.Origin("tier2.settings.root"))
	})
	t.Run("data_dir moves the fs root", func(t *testing.T) {
		c := mustLoad(t, "data_dir = \"/file\"\n", map[string]string{"AOF2_DATA_DIR": "/env"})
		require.Equal(t, "/env/tier2", c.Tier2.Settings["root"])
	})
	t.Run("secrets are not echoed", func(t *testing.T) {
		_, err := load(t, "", map[string]string{"AOF2_LISTEN_AUTH_TOKEN": "t0ps3cret", "AOF2_LISTEN_AUTH_TOKEN_FILE": "/nonexistent"})
		require.ErrorContains(t, err, "listen.auth_token_file")
		require.NotContains(t, err.Error(), "t0ps3cret")
		_, err = load(t, "", nil, "-tier2-settings", "secret_access_key")
		require.NotContains(t, err.Error(), "secret_access_key\"")
	})
}

func TestUnknownFlag(t *testing.T) {
	_, err := load(t, "", nil, "-segment-sise", "1MiB")
	require.ErrorContains(t, err, "-segment-sise")
	require.ErrorIs(t, err, types.ErrInvalidConfig)
}

func TestCombinationsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"target beyond segment", "segment {\n  size = \"1MiB\"\n  target_bytes = \"1MiB\"\n}\n", []string{"segment.target_bytes", "aof2.hcl:3:"}},
		{"tier2 policy without tier 2", "tier0 {\n  policy = \"tier2\"\n}\ntier2 {\n  enabled = false\n}\n", []string{"tier0.policy", `"tier2"`, "needs a tier 2"}},
		{"retention without tier 2", "tier2 {\n  plugin = \"\"\n}\nretention {\n  max_age = \"720h\"\n}\n", []string{"aof2.hcl:5:", "retention.max_age", "needs one configured"}},
		{"retention bytes without tier 2", "tier2 {\n  enabled = false\n}\nretention {\n  max_bytes = \"10GiB\"\n}\n", []string{"retention.max_bytes", `"10GiB"`}},
		{"retry max below initial", "tier2 {\n  retry_initial = \"1s\"\n  retry_max = \"100ms\"\n}\n", []string{"tier2.retry_max", "at least tier2.retry_initial"}},
		{"read default above the read maximum", "limits {\n  read_default_bytes = \"32MiB\"\n}\n", []string{"limits.read_max_bytes", `"16MiB"`, "at least limits.read_default_bytes (32MiB)"}},
		{"disk low watermark not below high", "tier0 {\n  disk_high_watermark = \"85%\"\n  disk_low_watermark = 85\n}\n", []string{"tier0.disk_low_watermark", `"85%"`, "below tier0.disk_high_watermark (85%)"}},
		{"node WAL without sync always", "segment {\n  sync = \"interval\"\n  node_wal = true\n}\n", []string{"segment.node_wal", `needs segment.sync = "always" (it is interval)`}},
		{"no listener", "listen {\n  grpc = \"\"\n  http = \"\"\n}\n", []string{"listen.grpc", "both empty"}},
		{"token and token file", "listen {\n  auth_token = \"a\"\n  auth_token_file = \"/x\"\n}\n", []string{"listen.auth_token_file", "not both"}},
		{"cert without key", "listen {\n  tls {\n    cert_file = \"/c\"\n  }\n}\n", []string{"listen.tls.key_file", "go together"}},
		{"client CA without TLS", "listen {\n  tls {\n    client_ca_file = \"/c\"\n  }\n}\n", []string{"listen.tls.client_ca_file", "need TLS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.src, nil)
			require.ErrorIs(t, err, types.ErrInvalidConfig)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}
