package kernels

// RankBytes is the memory traffic of one RankSampler call on rows scores (P = the next
// power of two): every bitonic pass reads and writes each element's key and row (16
// bytes), the initialisation reads the scores and writes both arrays (12 bytes each);
// the n draws are negligible.
func RankBytes(rows int) float64 {
	p, passes := 2, 1
	for p < rows {
		p *= 2
		passes++
	}
	return float64(passes*(passes+1)/2)*16*float64(p) + 12*float64(p)
}

// MeasureRank times one rank-prioritised draw of n rows from rows scored rows (the sort
// and the draw: the per-iteration cost of rank-prioritised replay), and returns the
// seconds per call and RankBytes.
func MeasureRank(l *Library, rows, n, reps int) (seconds, bytes float64, err error) {
	score, err := rngBenchNormal(l, "rank bench scores", 2, rows)
	if err != nil {
		return 0, 0, err
	}
	defer score.Release()
	out, err := NewIndexTensor(l.dev, "rank bench draws", n, rows)
	if err != nil {
		return 0, 0, err
	}
	defer out.Release()
	s, err := l.NewRankSampler(out, score, RankWeight, 3)
	if err != nil {
		return 0, 0, err
	}
	defer s.Release()
	if err := s.Set(rows, 0); err != nil {
		return 0, 0, err
	}
	sec, err := TimeOps(l, reps, s.Ops()...)
	return sec, RankBytes(rows), err
}
