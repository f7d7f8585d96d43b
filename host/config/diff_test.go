package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestChanged(t *testing.T) {
	base, err := load(t, "tier0 {\n  max_bytes = \"1GiB\"\n  stream \"7\" {\n    max_bytes = \"1MiB\"\n  }\n}\n", nil)
	require.NoError(t, err)
	same, err := load(t, "tier0 {\n  max_bytes = \"1024MiB\"\n  stream \"7\" {\n    max_bytes = \"1MiB\"\n  }\n}\n", nil)
	require.NoError(t, err)
	require.Empty(t, Changed(base, same), "the same values written otherwise")
	other, err := load(t, "log_level = \"debug\"\ntier0 {\n  max_bytes = \"2GiB\"\n  stream \"8\" {\n    max_bytes = \"1MiB\"\n  }\n}\nsegment {\n  size = \"128MiB\"\n}\n", nil, "-tier2-env-allow", "A,B")
	require.NoError(t, err)
	require.Equal(t, []string{"log_level", "segment.size", "tier0.max_bytes", "tier0.stream.max_bytes", "tier2.env_allow"}, Changed(base, other))
}
