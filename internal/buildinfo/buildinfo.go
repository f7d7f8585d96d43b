// Package buildinfo says which build a binary is: its version, the commit
// it was built from, when, and with which Go. Every AOF2 binary reports
// the same fields (`aof2-host version`, a plugin's -version, the serve
// banner, the aof2_build_info metric), so that an operator can match a
// running process, a release archive and a bug report.
//
// The fields come from the build information the Go toolchain embeds
// (runtime/debug.ReadBuildInfo: the main module's version when built with
// `go install module@version`, the VCS revision, its time and whether the
// tree was modified when built from a checkout), so a plain `go build`
// reports its commit; release builds may also set Version and Date with
// -ldflags "-X github.com/aof2/aof2/internal/buildinfo.version=v1.2.3
// -X github.com/aof2/aof2/internal/buildinfo.date=2026-12-07T00:00:00Z",
// which win over what the toolchain recorded.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set by -ldflags -X at release builds (see the package doc).
var (
	version string
	date    string
)

// Unknown fills a field the build did not record.
const Unknown = "unknown"

// Info describes one build.
type Info struct {
	// Version is the release (v1.2.3), the module pseudo-version a `go
	// install` recorded, or "devel" for a build from a checkout.
	Version string `json:"version"`
	// Revision is the VCS commit, with a "-dirty" suffix when the tree had
	// uncommitted changes; Unknown when not built from a checkout.
	Revision string `json:"revision"`
	// Date is the release build's date, else the commit's time (RFC 3339).
	Date      string `json:"build_date"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"` // GOOS/GOARCH
}

// Read returns this binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	return fromBuildInfo(bi, ok, version, date)
}

// fromBuildInfo derives Info from what the toolchain recorded and the
// -ldflags overrides.
func fromBuildInfo(bi *debug.BuildInfo, ok bool, ldVersion, ldDate string) Info {
	in := Info{Version: "devel", Revision: Unknown, Date: Unknown, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if ok && bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			in.Version = v
		}
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Revision = s.Value
			case "vcs.time":
				in.Date = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && in.Revision != Unknown {
			in.Revision += "-dirty"
		}
	}
	if ldVersion != "" {
		in.Version = ldVersion
	}
	if ldDate != "" {
		in.Date = ldDate
	}
	return in
}

// ShortRevision is the revision cut to 12 characters (a "-dirty" suffix
// kept), as the banner prints it.
func (i Info) ShortRevision() string {
	rev, dirty := strings.CutSuffix(i.Revision, "-dirty")
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// String is the one-line form: "v1.2.3 (revision 0123456789ab, built
// 2026-12-07T00:00:00Z, go1.25.4 linux/amd64)".
func (i Info) String() string {
	return fmt.Sprintf("%s (revision %s, built %s, %s %s)", i.Version, i.ShortRevision(), i.Date, i.GoVersion, i.Platform)
}

// ClientAPI is the major version of the client API: the aof2.v1 gRPC
// package and the /v1 HTTP routes.
const ClientAPI = "v1"
