package kernels

// Measurements of the RNG, SDE-step, Adam and gather/scatter kernels for `osds bench`
// and the Go benchmarks. Each builds its inputs, then times reps back-to-back dispatches
// recorded into one command buffer with TimeOps, and returns the seconds per dispatch
// with the bytes each dispatch moves (divide for GB/s; for the RNG, bytes/4 is samples).

// MeasureRand times RandNormal (normal) or RandUniform filling n elements and returns the
// seconds per fill and the bytes written (4n).
func MeasureRand(l *Library, normal bool, n, reps int) (seconds, bytes float64, err error) {
	x, err := NewTensor(l.dev, "rand bench", n)
	if err != nil {
		return 0, 0, err
	}
	defer x.Release()
	var op *Op
	if normal {
		op, err = l.RandNormal(x, 0x5eed, 0)
	} else {
		op, err = l.RandUniform(x, 0x5eed, 0)
	}
	if err != nil {
		return 0, 0, err
	}
	defer op.Release()
	sec, err := TimeOps(l, reps, op)
	return sec, 4 * float64(n), err
}

// rngBenchNormal allocates a tensor of the given shape filled on the device with
// standard normals (stream picks an independent sequence), for benchmark inputs.
func rngBenchNormal(l *Library, label string, stream uint32, shape ...int) (*Tensor, error) {
	x, err := NewTensor(l.dev, label, shape...)
	if err != nil {
		return nil, err
	}
	op, err := l.RandNormal(x, 0xbe4c, stream)
	if err == nil {
		err = l.Run(op)
		op.Release()
	}
	if err != nil {
		x.Release()
		return nil, err
	}
	return x, nil
}
