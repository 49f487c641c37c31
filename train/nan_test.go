package train

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNaNStopsTrainingAndKeepsTheLastGoodCheckpoint: a reward that yields NaN must stop
// training with the iteration and the tensor named, and a checkpoint written before must
// survive the failed save that follows.
func TestNaNStopsTrainingAndKeepsTheLastGoodCheckpoint(t *testing.T) {
	l := testLibrary(t)
	target, err := NewGaussian([]float64{0, 0}, [][]float64{{1, 0}, {0, 1}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	reward := gaussianReward(t, l, target)
	cfg := DefaultConfig(target)
	cfg.Steps, cfg.Batch = 4, 16
	tr, err := NewTrainer(l, 2, cfg, reward)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	for i := 0; i < 3; i++ {
		if _, _, err := tr.Step(); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	if err := tr.Save(path, "gaussian"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	// A NaN in the learned log Z makes the loss NaN from the next iteration on.
	var stepErr error
	for i := 0; i < 10 && stepErr == nil; i++ {
		if err := tr.Net.LogZ.Value.Write([]float32{float32(math.NaN())}); err != nil {
			t.Fatal(err)
		}
		_, _, stepErr = tr.Step()
	}
	if stepErr == nil {
		_, stepErr = tr.Flush()
	}
	if stepErr == nil || !strings.Contains(stepErr.Error(), "iteration 3") || !strings.Contains(stepErr.Error(), "NaN") {
		t.Fatalf("training on NaN: got %v, want an error naming iteration 3 and NaN", stepErr)
	}
	// By now NaN has spread through Adam into every parameter; the save names the first.
	if err := tr.Save(path, "gaussian"); err == nil || !strings.Contains(err.Error(), "parameter") || !strings.Contains(err.Error(), "is NaN") {
		t.Fatalf("saving NaN parameters: got %v, want an error naming the parameter", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("the last good checkpoint was overwritten")
	}
}
