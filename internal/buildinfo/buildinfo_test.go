package buildinfo

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := func(rev, time, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: time}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name             string
		bi               *debug.BuildInfo
		ldVersion, ldDay string
		want             Info
		short            string
	}{
		{name: "no build info", want: Info{Version: "devel", Revision: Unknown, Date: Unknown}, short: Unknown},
		{name: "checkout", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "2026-12-07T00:00:00Z", "false")},
			want: Info{Version: "devel", Revision: rev, Date: "2026-12-07T00:00:00Z", GoVersion: "go1.26.8"}, short: rev[:12]},
		{name: "dirty checkout", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Settings: vcs(rev, "2026-12-07T00:00:00Z", "true")},
			want: Info{Version: "devel", Revision: rev + "-dirty", Date: "2026-12-07T00:00:00Z", GoVersion: "go1.26.8"}, short: rev[:12] + "-dirty"},
		{name: "go install module@version", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}},
			want: Info{Version: "v1.2.3", Revision: Unknown, Date: Unknown, GoVersion: "go1.26.8"}, short: Unknown},
		{name: "release ldflags win", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "2026-12-06T00:00:00Z", "false")},
			ldVersion: "v1.0.0", ldDay: "2026-12-07T12:00:00Z",
			want: Info{Version: "v1.0.0", Revision: rev, Date: "2026-12-07T12:00:00Z", GoVersion: "go1.26.8"}, short: rev[:12]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fromBuildInfo(tc.bi, tc.bi != nil, tc.ldVersion, tc.ldDay)
			require.NotEmpty(t, got.Platform)
			if tc.want.GoVersion == "" {
				tc.want.GoVersion = got.GoVersion // runtime.Version()
			}
			tc.want.Platform = got.Platform
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.short, got.ShortRevision())
			require.Contains(t, got.String(), tc.want.Version+" (revision "+tc.short+", built "+tc.want.Date+", ")
		})
	}
}
