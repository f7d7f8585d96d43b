package conformance

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/aof2/aof2/pluginapi"
)

func listBehaviours() []behaviour {
	return []behaviour{
		{"ListPaging", testListPaging},
		{"ListPrefixIsolation", testListPrefix},
	}
}

// listAll collects a listing, checking order and page sizes on the way.
func (s *suite) listAll(t T, req pluginapi.ListRequest) []pluginapi.ObjectInfo {
	t.Helper()
	ctx, cancel := s.ctx(t)
	defer cancel()
	var all []pluginapi.ObjectInfo
	err := s.b().List(ctx, req, func(page []pluginapi.ObjectInfo) error {
		if req.PageSize > 0 {
			check(t, RuleListOrder, len(page) <= int(req.PageSize), "got a page of %d objects, want at most %d (the page size asked for)", len(page), req.PageSize)
		}
		all = append(all, page...)
		return nil
	})
	noErr(t, RuleListOrder, err, "List prefix %q after %q", req.Prefix, req.StartAfter)
	for i := 1; i < len(all); i++ {
		if all[i-1].Key == all[i].Key {
			check(t, RuleListOrder, false, "got key %q listed twice, want each key once", all[i].Key)
			continue
		}
		check(t, RuleListOrder, all[i-1].Key < all[i].Key, "got key %q listed after %q, want each key once in ascending byte order", all[i].Key, all[i-1].Key)
	}
	return all
}

func keysOf(objs []pluginapi.ObjectInfo) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Key
	}
	return out
}

func testListPaging(t T, s *suite) {
	if !s.caps().List {
		t.Skipf("list not advertised (Unimplemented checked by UnadvertisedFeatures)")
	}
	ctx, cancel := s.ctx(t)
	defer cancel()
	base := s.prefix + "list-paging/"
	// Names chosen so that a naive directory walk sorts them wrongly:
	// "a.b" < "a/x" in byte order although "a" < "a.b".
	names := []string{"a", "a.b", "a/x", "a/y/z", "a0", "b", "b/c", "c-1", "c/0", "c0"}
	for i := range 25 {
		names = append(names, fmt.Sprintf("n/%03d", i))
	}
	var want []string
	for _, n := range names {
		key := s.key("list-paging/" + n)
		s.put(t, ctx, s.b(), key, []byte(n))
		want = append(want, key)
	}
	sort.Strings(want)
	for _, size := range []uint32{1, 3, 7, 1000} {
		got := keysOf(s.listAll(t, pluginapi.ListRequest{Prefix: base, PageSize: size}))
		check(t, RuleListOrder, slices.Equal(got, want), "page size %d: %s", size, keysDiff(got, want))
	}
	all := s.listAll(t, pluginapi.ListRequest{Prefix: base})
	for _, o := range all {
		want := uint64(len(o.Key) - len(base))
		check(t, RuleListInfo, o.Size == want && o.ETag != "", "listed %q: got size %d etag %q, want size %d and a non-empty etag", o.Key, o.Size, o.ETag, want)
		// The host downloads what it listed pinned to the listed etag
		// (restore, read replicas): it must be the one Head and Get report.
		head, err := s.b().Head(ctx, o.Key)
		noErr(t, RuleListInfo, err, "Head %q (listed)", o.Key)
		check(t, RuleListInfo, o.ETag == head.ETag, "listed %q: got etag %q, want the etag Head reports, %q", o.Key, o.ETag, head.ETag)
	}
	// Resuming after any key gives exactly the rest.
	for _, i := range []int{0, 1, 4, len(want) - 2, len(want) - 1} {
		got := keysOf(s.listAll(t, pluginapi.ListRequest{Prefix: base, StartAfter: want[i], PageSize: 4}))
		check(t, RuleListPrefix, slices.Equal(got, want[i+1:]), "start_after %q: %s", want[i], keysDiff(got, want[i+1:]))
	}
	// start_after need not be an existing key.
	got := keysOf(s.listAll(t, pluginapi.ListRequest{Prefix: base, StartAfter: base + "a/"}))
	check(t, RuleListPrefix, slices.Equal(got, want[2:]), "start_after %q: %s", base+"a/", keysDiff(got, want[2:]))
	// Stopping early returns the callback's error and no more pages.
	stop := errors.New("stop")
	pages := 0
	err := s.b().List(ctx, pluginapi.ListRequest{Prefix: base, PageSize: 2}, func([]pluginapi.ObjectInfo) error {
		pages++
		return stop
	})
	check(t, RuleListOrder, errors.Is(err, stop) && pages == 1, "a callback error: got %v after %d pages, want the callback's error after 1 page", err, pages)
}

func testListPrefix(t T, s *suite) {
	if !s.caps().List {
		t.Skipf("list not advertised (Unimplemented checked by UnadvertisedFeatures)")
	}
	ctx, cancel := s.ctx(t)
	defer cancel()
	for _, n := range []string{"iso/a", "iso/a-b", "iso/ab", "iso/a/c", "iso/a/d/e", "iso/b"} {
		s.put(t, ctx, s.b(), s.key(n), []byte(n))
	}
	p := s.prefix
	cases := map[string][]string{
		p + "iso/a/":    {p + "iso/a/c", p + "iso/a/d/e"},
		p + "iso/a":     {p + "iso/a", p + "iso/a-b", p + "iso/a/c", p + "iso/a/d/e", p + "iso/ab"},
		p + "iso/a-":    {p + "iso/a-b"},
		p + "iso/b":     {p + "iso/b"},
		p + "iso/c":     nil,
		p + "iso/a/d/e": {p + "iso/a/d/e"},
	}
	for prefix, want := range cases {
		got := keysOf(s.listAll(t, pluginapi.ListRequest{Prefix: prefix}))
		check(t, RuleListPrefix, slices.Equal(got, want), "prefix %q: %s", prefix, keysDiff(got, want))
	}
	// Another run's prefix is invisible, and listing everything includes ours.
	got := keysOf(s.listAll(t, pluginapi.ListRequest{Prefix: randomPrefix()}))
	check(t, RuleListPrefix, len(got) == 0, "a fresh prefix: got %v, want nothing", got)
	got = keysOf(s.listAll(t, pluginapi.ListRequest{StartAfter: p + "iso/a/d", PageSize: 2}))
	check(t, RuleListPrefix, len(got) >= 2 && got[0] == p+"iso/a/d/e", "listing everything after %q: got %v first, want %q then at least one more key", p+"iso/a/d", firstN(got, 3), p+"iso/a/d/e")
}

func firstN(s []string, n int) []string { return s[:min(n, len(s))] }

// keysDiff says how a listing differs from the one wanted, short enough to
// read: the counts and the first position where they part.
func keysDiff(got, want []string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	at := func(s []string) string {
		if i < len(s) {
			return fmt.Sprintf("%q", s[i])
		}
		return "the end"
	}
	if len(got) <= 6 && len(want) <= 6 {
		return fmt.Sprintf("got %q, want %q", got, want)
	}
	return fmt.Sprintf("got %d keys, want %d; first difference at position %d: got %s, want %s", len(got), len(want), i, at(got), at(want))
}
