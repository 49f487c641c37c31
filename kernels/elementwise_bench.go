package kernels

import (
	"fmt"
	"time"
)

// Timing helpers for `osds bench` and the Go benchmarks of the elementwise and reduction
// kernels. Each records reps dispatches of one op back to back into one command buffer,
// submits once and waits, so per-dispatch API overhead is amortised the way a training
// iteration amortises it; the first run (pipeline compilation, first-touch of buffers)
// is not timed.

// ElementwiseBytes is the memory traffic of one Add on n elements: two reads and one
// write of 4 bytes each. Divide by MeasureElementwise's seconds for GB/s.
func ElementwiseBytes(n int) float64 { return 12 * float64(n) }

// RowReduceBytes is the memory traffic of one RowReduce of a rows×cols matrix: every
// element read once, one value written per row.
func RowReduceBytes(rows, cols int) float64 { return 4 * float64(rows*cols+rows) }

// MeasureElementwise returns the mean seconds per dispatch of Add (z = x + y) on n
// elements over reps back-to-back dispatches.
func MeasureElementwise(l *Library, n, reps int) (seconds float64, err error) {
	ts, err := ewBenchTensors(l, "elementwise bench", 3, n)
	if err != nil {
		return 0, err
	}
	defer ewRelease(ts)
	op, err := l.Add(ts[2], ts[0], ts[1])
	if err != nil {
		return 0, err
	}
	defer op.Release()
	return ewTimeOps(l, reps, op)
}

// MeasureRowReduce returns the mean seconds per dispatch of RowReduce(ReduceSum) on a
// rows×cols matrix over reps back-to-back dispatches.
func MeasureRowReduce(l *Library, rows, cols, reps int) (seconds float64, err error) {
	ts, err := ewBenchTensors(l, "row reduce bench", 1, rows, cols)
	if err != nil {
		return 0, err
	}
	defer ewRelease(ts)
	out, err := NewTensor(l.dev, "row reduce bench out", rows)
	if err != nil {
		return 0, err
	}
	defer out.Release()
	op, err := l.RowReduce(out, ts[0], ReduceSum)
	if err != nil {
		return 0, err
	}
	defer op.Release()
	return ewTimeOps(l, reps, op)
}

// ewBenchTensors allocates k tensors of the given shape filled with ones.
func ewBenchTensors(l *Library, label string, k int, shape ...int) ([]*Tensor, error) {
	var ts []*Tensor
	for i := 0; i < k; i++ {
		t, err := NewTensor(l.dev, fmt.Sprintf("%s %d", label, i), shape...)
		if err == nil {
			err = t.Fill(1)
		}
		if err != nil {
			t.Release()
			ewRelease(ts)
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

func ewRelease(ts []*Tensor) {
	for _, t := range ts {
		t.Release()
	}
}

// ewTimeOps runs ops once untimed, then records them reps times into one command buffer,
// submits, waits, and returns the mean seconds per repetition (recording included: it
// is part of what a dispatch costs).
func ewTimeOps(l *Library, reps int, ops ...*Op) (float64, error) {
	if reps < 1 {
		return 0, fmt.Errorf("kernels: timing %d repetitions (want ≥ 1)", reps)
	}
	if err := l.Run(ops...); err != nil {
		return 0, err
	}
	q := l.dev.Queue()
	if err := q.Wait(); err != nil {
		return 0, err
	}
	start := time.Now()
	rec, err := l.NewRecorder("bench")
	if err != nil {
		return 0, err
	}
	for i := 0; i < reps; i++ {
		rec.Record(ops...)
	}
	if err := rec.Submit(); err != nil {
		return 0, err
	}
	if err := q.Wait(); err != nil {
		return 0, err
	}
	return time.Since(start).Seconds() / float64(reps), nil
}
