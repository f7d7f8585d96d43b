package config

import (
	"path/filepath"
	"slices"
)

// pluginPathSettings names, per plugin, the tier2.settings entries that
// are file or directory paths (a test checks them against each plugin's
// ConfigKeys).
var pluginPathSettings = map[string][]string{
	"fs":  {"root"},
	"gcs": {"credentials_file"},
}

// absPaths makes every path the configuration holds absolute, relative to
// the working directory, once every source has been applied. Everything
// downstream then sees one spelling: the plugin, which refuses relative
// local paths (it checks each segment file the host hands it against the
// staging directory), the warm cache and tier 2, whose file paths derive
// from data_dir, logs and dump. A path that cannot be made absolute (the
// working directory is gone) is an error naming its key.
func (c *Config) absPaths() error {
	var errs errorList
	abs := func(key string, p *string) {
		if *p == "" || filepath.IsAbs(*p) {
			if *p != "" {
				*p = filepath.Clean(*p)
			}
			return
		}
		a, err := filepath.Abs(*p)
		if err != nil {
			errs.add(c.keyError(key, *p, "cannot make the relative path absolute", err))
			return
		}
		*p = a
	}
	abs("data_dir", &c.DataDir)
	abs("plugin_dir", &c.PluginDir)
	abs("cluster.data", &c.Cluster.Data)
	abs("listen.auth_token_file", &c.Listen.AuthTokenFile)
	abs("listen.tls.cert_file", &c.Listen.TLS.CertFile)
	abs("listen.tls.key_file", &c.Listen.TLS.KeyFile)
	abs("listen.tls.client_ca_file", &c.Listen.TLS.ClientCAFile)
	for name, v := range c.Tier2.Settings {
		if slices.Contains(pluginPathSettings[c.Tier2.Plugin], name) {
			abs("tier2.settings."+name, &v)
			c.Tier2.Settings[name] = v
		}
	}
	return errs.err()
}
