package conformance

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every failure the suite can report says what it got and what it wanted.
// The broken-backend corpus checks the messages it provokes; this checks
// the format of every check and fail call in the source, provoked or not.
// A bare "%v" or "%s" passes a message built elsewhere (and checked there),
// and keysDiff says got and want itself.
func TestEveryFailureFormatSaysGotAndWant(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	calls := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		require.NoError(t, err)
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			var at int
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				switch fn.Name {
				case "check":
					at = 3
				case "fail":
					at = 2
				default:
					return true
				}
			case *ast.SelectorExpr:
				if fn.Sel.Name != "msg" {
					return true
				}
				at = 0
			default:
				return true
			}
			if len(call.Args) <= at {
				return true
			}
			lit, ok := call.Args[at].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			format, err := strconv.Unquote(lit.Value)
			require.NoError(t, err)
			calls++
			if format == "%v" || format == "%s" || passesKeysDiff(call.Args[at+1:]) {
				return true
			}
			if !strings.Contains(format, "got") || !strings.Contains(format, "want") {
				t.Errorf("%s: failure format %q does not say got and want", fset.Position(lit.Pos()), format)
			}
			return true
		})
	}
	require.Greater(t, calls, 50, "the scan found too few check/fail calls: has their shape changed?")
}

func passesKeysDiff(args []ast.Expr) bool {
	for _, a := range args {
		if c, ok := a.(*ast.CallExpr); ok {
			if id, ok := c.Fun.(*ast.Ident); ok && id.Name == "keysDiff" {
				return true
			}
		}
	}
	return false
}
