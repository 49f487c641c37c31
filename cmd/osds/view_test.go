package main

import (
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
	if !strings.Contains(viewKeys, "[ / ]") {
		t.Fatal("the help lacks the grid-size keys")
	}
}
