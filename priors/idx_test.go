package priors

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

func TestIDXRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 7*3*5)
	for i := range data {
		data[i] = byte(rng.IntN(256))
	}
	path := filepath.Join(t.TempDir(), "x.idx")
	if err := WriteIDX(path, []int{7, 3, 5}, data); err != nil {
		t.Fatal(err)
	}
	idx, err := ReadIDX(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Dims) != 3 || idx.Dims[0] != 7 || idx.Dims[2] != 5 || !bytes.Equal(idx.Data, data) {
		t.Fatalf("round trip: dims %v", idx.Dims)
	}
}

func TestIDXRejectsBadFiles(t *testing.T) {
	good := []byte{0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"short", []byte{0, 0}, "too short"},
		{"magic", append([]byte{1}, good[1:]...), "magic"},
		{"dtype", append([]byte{0, 0, 0x0d}, good[3:]...), "element type"},
		{"ndims", append([]byte{0, 0, 8, 9}, good[4:]...), "dimensions"},
		{"truncated", good[:len(good)-2], "truncated"},
		{"trailing", append(append([]byte(nil), good...), 7), "trailing"},
		{"huge", []byte{0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "exceed"},
	}
	for _, c := range cases {
		_, err := ParseIDX(bufio.NewReader(bytes.NewReader(c.data)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
	if _, err := ParseIDX(bufio.NewReader(bytes.NewReader(good))); err != nil {
		t.Fatalf("good file rejected: %v", err)
	}
}

func TestLoadShippedDatasets(t *testing.T) {
	for _, c := range []struct {
		name, split string
		n           int
	}{{"mnist", "test", 10000}, {"fashion", "test", 10000}, {"mnist", "train", 60000}} {
		ds, err := LoadDataset(c.name, c.split)
		if err != nil {
			t.Fatal(err)
		}
		if ds.N != c.n || ds.Height != 28 || ds.Wd != 28 || len(ds.Images) != c.n*784 || len(ds.Labels) != c.n {
			t.Fatalf("%s %s: N=%d %dx%d", c.name, c.split, ds.N, ds.Height, ds.Wd)
		}
		var counts [10]int
		for _, l := range ds.Labels {
			counts[l]++
		}
		for k, n := range counts {
			if n < c.n/20 {
				t.Fatalf("%s %s: class %d has only %d examples", c.name, c.split, k, n)
			}
		}
	}
	if _, err := LoadDataset("cifar", "test"); err == nil {
		t.Fatal("unknown dataset accepted")
	}
	t.Setenv("OSDS_MNIST_DIR", t.TempDir())
	if _, err := LoadDataset("mnist", "test"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing files: %v", err)
	}
}
