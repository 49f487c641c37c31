package kernels

// GatherBytes is the memory traffic of one Gather or Scatter of n rows of length d: the
// rows read and written, and the indices read.
func GatherBytes(n, d int) float64 { return 8*float64(n*d) + 4*float64(n) }

// MeasureGather times Gather (or Scatter with scatter) of n distinct rows (n ≤ rows) of
// length d from (into) a table of rows rows, and returns the seconds per dispatch and
// GatherBytes.
func MeasureGather(l *Library, scatter bool, rows, n, d, reps int) (seconds, bytes float64, err error) {
	table, err := rngBenchNormal(l, "gather bench table", 0, rows, d)
	if err != nil {
		return 0, 0, err
	}
	defer table.Release()
	batch, err := rngBenchNormal(l, "gather bench batch", 1, n, d)
	if err != nil {
		return 0, 0, err
	}
	defer batch.Release()
	// Distinct rows spread over the table: a stride coprime with rows visits each once.
	idx := make([]uint32, n)
	stride := 7919 % rows
	for stride == 0 || gatherGCD(stride, rows) != 1 {
		stride++
	}
	for i := range idx {
		idx[i] = uint32((i * stride) % rows)
	}
	ix, err := IndexFromSlice(l.dev, "gather bench idx", idx, rows)
	if err != nil {
		return 0, 0, err
	}
	defer ix.Release()
	var op *Op
	if scatter {
		op, err = l.Scatter(table, batch, ix)
	} else {
		op, err = l.Gather(batch, table, ix)
	}
	if err != nil {
		return 0, 0, err
	}
	defer op.Release()
	sec, err := TimeOps(l, reps, op)
	return sec, GatherBytes(n, d), err
}

func gatherGCD(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
