package train

import "testing"

// TestStepRowStride checks the row stride of the per-step stacks: the smallest count ≥ the
// batch at which every step's slice starts at an aligned element, for each column count.
func TestStepRowStride(t *testing.T) {
	for _, c := range []struct {
		batch int
		cols  []int
		align int
		want  int
	}{
		{300, []int{64, 2}, 64, 320},  // 25GMM: d = 2 needs 32-row steps
		{300, []int{64, 32}, 64, 300}, // Manywell: already aligned
		{300, []int{64, 10}, 64, 320}, // Funnel: 10·R must be a multiple of 64
		{7, []int{3}, 1, 7},           // no alignment
		{5, []int{4}, 0, 5},           // an adapter reporting 0
	} {
		got := stepRowStride(c.batch, c.cols, c.align)
		if got != c.want {
			t.Fatalf("stepRowStride(%d, %v, %d) = %d, want %d", c.batch, c.cols, c.align, got, c.want)
		}
		for _, n := range c.cols {
			if c.align > 0 && got*n%c.align != 0 {
				t.Fatalf("stepRowStride(%d, %v, %d) = %d: %d·%d is not a multiple of %d", c.batch, c.cols, c.align, got, got, n, c.align)
			}
		}
	}
}
