package deploy

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// This file reads the PromQL in the dashboards and rules far enough to say
// which metrics and labels each expression names. It is a tokenizer plus a
// walk over the tokens, not a full parser (the PromQL grammar lives in the
// Prometheus module, too heavy for this module's tests); `make check-deploy`
// feeds every expression to promtool for the real parse. What it cannot
// classify it reports as an error instead of guessing.

// selector is one vector selector: a metric name and the labels its
// matchers name.
type selector struct {
	Metric string
	Labels []string
	// RateLike: the selector is the direct argument of rate, irate or
	// increase (which need a counter or a histogram's _bucket/_sum/_count).
	RateLike bool
}

// exprRefs is what one expression refers to.
type exprRefs struct {
	Selectors []selector
	// Grouping are the labels named in by, without, on, ignoring,
	// group_left and group_right clauses.
	Grouping []string
	// Functions are the functions and aggregations called.
	Functions []string
}

type tokKind int

const (
	tokIdent tokKind = iota
	tokString
	tokNumber
	tokPunct
)

type token struct {
	kind tokKind
	text string
}

// grafanaVars are the Grafana macros that stand where PromQL expects a
// duration; other $variables may only appear inside strings.
var grafanaVars = regexp.MustCompile(`\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}`)

func tokenize(expr string) ([]token, error) {
	s := grafanaVars.ReplaceAllString(expr, "5m")
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#': // comment to end of line
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			toks = append(toks, token{tokString, s[i+1 : j]})
			i = j + 1
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && (isIdentStart(s[j]) || isDigit(s[j])) {
				j++
			}
			toks = append(toks, token{tokIdent, s[i:j]})
			i = j
		case isDigit(c) || (c == '.' && i+1 < len(s) && isDigit(s[i+1])):
			// numbers, and durations such as 5m or 1h30m
			j := i + 1
			for j < len(s) && (isDigit(s[j]) || isIdentStart(s[j]) || s[j] == '.') {
				if (s[j] == 'e' || s[j] == 'E') && j+1 < len(s) && (s[j+1] == '+' || s[j+1] == '-') {
					j++
				}
				j++
			}
			toks = append(toks, token{tokNumber, s[i:j]})
			i = j
		case c == '$':
			return nil, fmt.Errorf("Grafana variable outside a string at offset %d: %q", i, s[i:])
		default:
			two := ""
			if i+1 < len(s) {
				two = s[i : i+2]
			}
			switch two {
			case "==", "!=", "=~", "!~", "<=", ">=":
				toks = append(toks, token{tokPunct, two})
				i += 2
				continue
			}
			if !strings.ContainsRune("(){}[],=<>+-*/%^@:", rune(c)) {
				return nil, fmt.Errorf("unexpected character %q at offset %d", c, i)
			}
			toks = append(toks, token{tokPunct, string(c)})
			i++
		}
	}
	return toks, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

var (
	aggregations = set("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
		"bottomk", "topk", "quantile", "limitk", "limit_ratio")
	groupingKeywords = set("by", "without", "on", "ignoring", "group_left", "group_right")
	operatorKeywords = set("and", "or", "unless", "bool", "atan2")
	numberKeywords   = set("inf", "nan", "Inf", "NaN")
	// functions are the PromQL functions these assets may call; a name
	// outside the list is reported (a typo the tokenizer would otherwise
	// read as a metric).
	functions = set("abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp", "clamp_max",
		"clamp_min", "count_over_time", "day_of_month", "day_of_week", "delta", "deriv", "exp", "floor",
		"histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_sum",
		"holt_winters", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "last_over_time", "ln",
		"log10", "log2", "max_over_time", "min_over_time", "minute", "month", "predict_linear",
		"present_over_time", "quantile_over_time", "rate", "resets", "round", "scalar", "sgn", "sort",
		"sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time", "time", "timestamp",
		"vector", "year")
	rateLike = set("rate", "irate", "increase")
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// parseRefs extracts the selectors, grouping labels and functions of one
// PromQL expression (Grafana macros allowed).
func parseRefs(expr string) (exprRefs, error) {
	toks, err := tokenize(expr)
	if err != nil {
		return exprRefs{}, err
	}
	var r exprRefs
	depth := 0 // parentheses, to check they balance
	peek := func(i int) token {
		if i < len(toks) {
			return toks[i]
		}
		return token{kind: tokPunct, text: ""}
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t.kind {
		case tokString, tokNumber:
			continue
		case tokPunct:
			switch t.text {
			case "(":
				depth++
			case ")":
				depth--
				if depth < 0 {
					return r, fmt.Errorf("unbalanced ')'")
				}
			case "[":
				// range or subquery: durations and ':' only
				j := i + 1
				for ; j < len(toks) && toks[j].text != "]"; j++ {
					if toks[j].kind != tokNumber && toks[j].text != ":" {
						return r, fmt.Errorf("unexpected %q inside [...]", toks[j].text)
					}
				}
				if j == len(toks) {
					return r, fmt.Errorf("unterminated '['")
				}
				i = j
			case "{":
				return r, fmt.Errorf("selector without a metric name: name every metric explicitly")
			case "]", "}":
				return r, fmt.Errorf("unexpected %q", t.text)
			}
			continue
		}
		name := t.text
		switch {
		case groupingKeywords[name]:
			if peek(i+1).text != "(" {
				if name == "group_left" || name == "group_right" {
					continue
				}
				return r, fmt.Errorf("%s without a label list", name)
			}
			j := i + 2
			for ; j < len(toks) && toks[j].text != ")"; j++ {
				switch {
				case toks[j].kind == tokIdent:
					r.Grouping = append(r.Grouping, toks[j].text)
				case toks[j].text == ",":
				default:
					return r, fmt.Errorf("unexpected %q in %s (...)", toks[j].text, name)
				}
			}
			if j == len(toks) {
				return r, fmt.Errorf("unterminated %s (...)", name)
			}
			i = j
		case operatorKeywords[name] || numberKeywords[name]:
		case name == "offset":
			if peek(i+1).kind != tokNumber && peek(i+1).text != "-" {
				return r, fmt.Errorf("offset without a duration")
			}
		case aggregations[name]:
			r.Functions = append(r.Functions, name)
			if nt := peek(i + 1).text; nt != "(" && !groupingKeywords[nt] {
				return r, fmt.Errorf("aggregation %s not followed by ( or a grouping clause", name)
			}
		case peek(i+1).text == "(":
			if !functions[name] {
				return r, fmt.Errorf("unknown function %s", name)
			}
			r.Functions = append(r.Functions, name)
		default:
			sel := selector{Metric: name}
			if i >= 2 && toks[i-1].text == "(" && toks[i-2].kind == tokIdent && rateLike[toks[i-2].text] {
				sel.RateLike = true
			}
			if peek(i+1).text == "{" {
				j := i + 2
				for ; j < len(toks) && toks[j].text != "}"; j++ {
					if toks[j].text == "," {
						continue
					}
					if toks[j].kind != tokIdent || j+2 >= len(toks) {
						return r, fmt.Errorf("bad matcher in %s{...} at %q", name, toks[j].text)
					}
					op, val := toks[j+1], toks[j+2]
					if !map[string]bool{"=": true, "!=": true, "=~": true, "!~": true}[op.text] || val.kind != tokString {
						return r, fmt.Errorf("bad matcher %s%s%s in %s{...}", toks[j].text, op.text, val.text, name)
					}
					sel.Labels = append(sel.Labels, toks[j].text)
					j += 2
				}
				if j == len(toks) {
					return r, fmt.Errorf("unterminated %s{...}", name)
				}
				i = j
			}
			r.Selectors = append(r.Selectors, sel)
		}
	}
	if depth != 0 {
		return r, fmt.Errorf("unbalanced '('")
	}
	return r, nil
}

// labelValuesQuery splits a Grafana `label_values(selector, label)`
// variable query.
var labelValuesQuery = regexp.MustCompile(`^\s*label_values\(\s*(.+)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

func TestParseRefs(t *testing.T) {
	r, err := parseRefs(`histogram_quantile(0.99, sum by (job, instance, le) (rate(aof_hydration_seconds_bucket{instance=~"$instance", a!="x,y}"}[$__rate_interval]))) > 2`)
	require.NoError(t, err)
	require.Equal(t, []selector{{Metric: "aof_hydration_seconds_bucket", Labels: []string{"instance", "a"}, RateLike: true}}, r.Selectors)
	require.Equal(t, []string{"job", "instance", "le"}, r.Grouping)
	require.Equal(t, []string{"histogram_quantile", "sum", "rate"}, r.Functions)

	r, err = parseRefs("min_over_time(a_seconds[1h]) > 5\nand\nchanges(a_seconds[1h:1m]) > 0 or b_total offset 5m unless on (x) group_left c")
	require.NoError(t, err)
	require.Equal(t, []selector{{Metric: "a_seconds"}, {Metric: "a_seconds"}, {Metric: "b_total"}, {Metric: "c"}}, r.Selectors)
	require.Equal(t, []string{"x"}, r.Grouping)

	r, err = parseRefs(`sum without (priority) (x) * 1e-3 + count(y{k='v'}) / inf`)
	require.NoError(t, err)
	require.Equal(t, []selector{{Metric: "x"}, {Metric: "y", Labels: []string{"k"}}}, r.Selectors)
	require.Equal(t, []string{"priority"}, r.Grouping)

	r, err = parseRefs(`increase(x_total[$__range]) + irate(y_total[5m])`)
	require.NoError(t, err)
	require.True(t, r.Selectors[0].RateLike)
	require.True(t, r.Selectors[1].RateLike)

	for _, bad := range []string{
		`rate(x[5m]`,                  // unbalanced
		`histogram_quantil(0.9, x)`,   // unknown function
		`{__name__="x"}`,              // no metric name
		`x{stream_id=~$stream_id}`,    // variable outside a string
		`x{stream_id}`,                // bad matcher
		`sum by stream_id (x)`,        // grouping without parentheses
		`rate(x[5m offset])`,          // junk in a range
		`x{a="b"`,                     // unterminated
		`x{a="b}`,                     // unterminated string
		`sum(rate(x[5m])) ; y`,        // stray character
		`max_over_time(x[5m]) offset`, // offset without duration
	} {
		_, err := parseRefs(bad)
		require.Error(t, err, "%s", bad)
	}

	m := labelValuesQuery.FindStringSubmatch(`label_values(aof_x{a="b"}, stream_id)`)
	require.Equal(t, []string{`label_values(aof_x{a="b"}, stream_id)`, `aof_x{a="b"}`, "stream_id"}, m)
}
