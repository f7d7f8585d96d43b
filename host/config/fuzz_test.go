package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzLoadHCL: any bytes as a configuration file give a validated Config
// or an error, never a panic; an accepted file renders to HCL that loads
// back to the same configuration.
func FuzzLoadHCL(f *testing.F) {
	for _, name := range []string{"aof2-fs.hcl", "aof2-s3.hcl", "aof2-gcs.hcl", "aof2-azure.hcl"} {
		src, err := os.ReadFile(filepath.Join(examplesDir, name))
		require.NoError(f, err)
		f.Add(src)
	}
	for _, s := range []string{
		"", "data_dir = 1", "segment { size = \"1.5GiB\" }", "tier0 {\n stream \"1\" {\n max_bytes = 1 }\n}",
		"tier2 { settings = { a = env(\"X\") } }", "x = [for i in [1] : i]", "listen { grpc = \"${1}\" }",
		"a = \"%{ if true }x%{ endif }\"", "tier2 {\nenv_allow = [\"A\", null]\n}", "tier2 {\nsettings = { a_key = \"k\" }\n}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		c := newDefaults(options{skipPlugin: true})
		err := applyFile(c, src, "fuzz.hcl", map[string]string{"X": "y"})
		if err == nil {
			c.finish()
			err = c.validate()
		}
		if err != nil {
			require.Error(t, err)
			return
		}
		for name := range c.Tier2.Settings {
			if secretSetting(name) {
				delete(c.Tier2.Settings, name) // HCL leaves secrets out
			}
		}
		back := newDefaults(options{skipPlugin: true})
		require.NoError(t, applyFile(back, []byte(c.HCL()), "back.hcl", nil), c.HCL())
		back.finish()
		require.Equal(t, c.HCL(), back.HCL())
	})
}
