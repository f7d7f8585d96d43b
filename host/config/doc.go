// Package config is the configuration layer of `aof2-host serve`.
//
// An operator configures the host in one HCL file (native syntax; env("NAME")
// reads a host variable, so secrets stay out of it) and adjusts it per
// machine or per run without editing the file: every key can be
// overridden by an AOF2_* environment variable, and every variable by a
// flag (defaults < file < environment < flags). The defaults alone give a
// working single node: data in ./data, tier 2 on the fs plugin in
// ./data/tier2, the client API on loopback only.
//
// Each key is declared once, in the table in table.go, with its HCL path,
// default, documentation and parser; the variable name (AOF2_ plus the
// path in upper case, dots as underscores), the flag (the path with dashes),
// Reference and HCL all derive from it, so they cannot drift apart.
//
// A misconfigured host must not start and then fail at the first upload or
// connection, so Load refuses unknown keys, bad values and unsafe
// combinations up front (listening beyond loopback without a token or
// TLS, retention without a tier 2, a missing plugin binary, unreadable
// token or certificate files). Each refusal is an *Error naming the key,
// the value and where it came from (file:line:column, variable or flag).
//
// The conversion methods (CoreConfig, CoordinatorConfig, Tier2Config,
// PluginLaunch, TLSConfig) hand the validated values to the core packages
// and to pluginapi; the host adds loggers, metrics registries and the
// launched plugin.
package config
