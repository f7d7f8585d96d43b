package config

import (
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier1"
)

// TestKeyTable checks what the derivations rely on: names are unique, no
// variable or flag of one key can be read as another's, and every key
// is documented.
func TestKeyTable(t *testing.T) {
	envs, flags := map[string]string{}, map[string]string{"config": "-config"}
	ref := Reference()
	for _, k := range keys {
		require.NotEmpty(t, k.doc, k.path)
		require.Equal(t, strings.ToLower(k.path), k.path)
		if prev, dup := envs[referenceEnv(k)]; dup {
			t.Errorf("%s and %s share %s", prev, k.path, referenceEnv(k))
		}
		envs[referenceEnv(k)] = k.path
		if prev, dup := flags[k.flagName()]; dup && k.labelled == "" {
			t.Errorf("%s and %s share -%s", prev, k.path, k.flagName())
		}
		flags[k.flagName()] = k.path
		require.Contains(t, ref, referenceEnv(k), k.path)
		require.Contains(t, ref, referenceFlag(k), k.path)
		require.NotEqual(t, EnvConfig, k.envName())
		if k.labelled == "" && k.kind != kindEntries {
			e, _, ok := entryForEnv(k.envName())
			require.False(t, ok, "%s reads as an entry of %v", k.envName(), e)
		}
	}
}

// TestEnumsMatchCore: every name the config accepts is one its core
// package parses, so a conversion never sees an unknown name.
func TestEnumsMatchCore(t *testing.T) {
	for _, s := range syncPolicies {
		_, err := core.ParseSyncPolicy(s)
		require.NoError(t, err, s)
	}
	for _, s := range writeModes {
		_, ok := segment.ParseWriteMode(s)
		require.True(t, ok, s)
	}
	for _, s := range preparations {
		_, ok := segment.ParsePreparation(s)
		require.True(t, ok, s)
	}
	for _, s := range tier1Levels {
		_, err := tier1.ParseLevel(s)
		require.NoError(t, err, s)
	}
	for _, s := range logLevels {
		require.NotEqual(t, hclog.NoLevel, hclog.LevelFromString(s), s)
	}
}
