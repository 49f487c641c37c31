package main

import (
	"slices"
	"strings"
	"testing"
)

func TestViewKeys(t *testing.T) {
	s := viewState{zoom: 1, shown: 300, total: 300}
	// [ halves down to one sample, ] doubles up to the batch.
	for _, want := range []int{150, 75, 37, 18, 9, 4, 2, 1, 1} {
		s.key("[")
		if s.shown != want {
			t.Fatalf("after [: %d samples, want %d", s.shown, want)
		}
	}
	for _, want := range []int{2, 4, 8, 16, 32, 64, 128, 256, 300, 300} {
		s.key("]")
		if s.shown != want {
			t.Fatalf("after ]: %d samples, want %d", s.shown, want)
		}
	}
	for k, want := range map[string]viewAction{"q": viewQuit, "escape": viewQuit, "r": viewResample, "p": viewResample, "s": viewSave, "space": viewNone, "x": viewNone} {
		c := s
		if got := c.key(k); got != want {
			t.Fatalf("key %q: action %d, want %d", k, got, want)
		}
	}
	s.key("p")
	s.key("space")
	s.key("l")
	s.key("+")
	if !s.showPrior || !s.paused || !s.linear || s.zoom != 1.25 {
		t.Fatalf("state after p, space, l, +: %+v", s)
	}
	s.key("-")
	s.key("[")
	line := s.status("gmm25")
	for _, want := range []string{"gmm25 prior (paused)", "150/300", "zoom 1", "[]:samples", "q:quit"} {
		if !strings.Contains(line, want) {
			t.Fatalf("status %q lacks %q", line, want)
		}
	}
	// Class keys act on amortised samplers only, and only when the class changes.
	a := viewState{class: -1, classes: 10}
	for _, c := range []struct {
		key   string
		want  viewAction
		class int
	}{{"3", viewRelabel, 3}, {"3", viewNone, 3}, {"a", viewRelabel, -1}, {"a", viewNone, -1}, {"9", viewRelabel, 9}} {
		if got := a.key(c.key); got != c.want || a.class != c.class {
			t.Fatalf("key %q: action %d class %d, want %d and %d", c.key, got, a.class, c.want, c.class)
		}
	}
	if line := a.status("posterior"); !strings.Contains(line, "class 9") || !strings.Contains(line, "0-9:class") {
		t.Fatalf("amortised status %q", line)
	}
	few := viewState{class: -1, classes: 3}
	if few.key("5") != viewNone || few.class != -1 {
		t.Fatal("key 5 changed the class of a 3-class sampler")
	}
	plain := viewState{class: -1}
	if plain.key("3") != viewNone || plain.key("a") != viewNone || strings.Contains(plain.status("gmm25"), "class") {
		t.Fatal("class keys act on a sampler that is not amortised")
	}
	if got := viewLabels(5, 3, -1); !slices.Equal(got, []int{0, 1, 2, 0, 1}) {
		t.Fatalf("every-class labels %v", got)
	}
	if got := viewLabels(3, 10, 7); !slices.Equal(got, []int{7, 7, 7}) || viewLabels(3, 0, -1) != nil {
		t.Fatalf("one-class labels %v", got)
	}
	if !strings.Contains(viewKeys, "[ / ]") {
		t.Fatal("the help lacks the grid-size keys")
	}
}
