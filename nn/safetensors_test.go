package nn

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sampleTensors(rng *rand.Rand) []NamedTensor {
	mk := func(name string, shape ...int) NamedTensor {
		n := 1
		for _, s := range shape {
			n *= s
		}
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(rng.NormFloat64())
		}
		return NamedTensor{Name: name, Shape: shape, Data: d}
	}
	return []NamedTensor{mk("layer1.weight", 7, 13), mk("layer1.bias", 13), mk("scalar"), mk("conv.weight", 3, 1, 5, 5)}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	path := filepath.Join(t.TempDir(), "m.safetensors")
	in := sampleTensors(rng)
	md := map[string]string{"arch": "mlp", "dims": "7-13"}
	if err := WriteSafetensors(path, in, md); err != nil {
		t.Fatal(err)
	}
	out, gotMD, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if gotMD["arch"] != "mlp" || gotMD["dims"] != "7-13" {
		t.Fatalf("metadata %v", gotMD)
	}
	byName := map[string]NamedTensor{}
	for _, o := range out {
		byName[o.Name] = o
	}
	for _, want := range in {
		got, ok := byName[want.Name]
		if !ok || len(got.Data) != len(want.Data) || len(got.Shape) != len(want.Shape) {
			t.Fatalf("tensor %q: got %+v", want.Name, got)
		}
		for i := range want.Data {
			if got.Data[i] != want.Data[i] {
				t.Fatalf("tensor %q element %d: %v, want %v", want.Name, i, got.Data[i], want.Data[i])
			}
		}
	}
}

func TestSafetensorsRejectsBadFiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := WriteSafetensors(path, sampleTensors(rng), nil); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	hlen := binary.LittleEndian.Uint64(good)
	header := string(good[8 : 8+hlen])
	withHeader := func(h string) []byte {
		for len(h)%8 != 0 {
			h += " "
		}
		b := make([]byte, 8, 8+len(h)+len(good))
		binary.LittleEndian.PutUint64(b, uint64(len(h)))
		b = append(b, h...)
		return append(b, good[8+hlen:]...)
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"truncated header", good[:8+hlen/2], "truncated"},
		{"truncated data", good[:len(good)-6], "outside"},
		{"oversized header", func() []byte {
			b := append([]byte(nil), good...)
			binary.LittleEndian.PutUint64(b, 1<<40)
			return b
		}(), "exceeds"},
		{"not json", withHeader("{not json"), "JSON"},
		{"wrong dtype", withHeader(strings.Replace(header, `"F32"`, `"F16"`, 1)), "dtype"},
		{"shape mismatch", withHeader(strings.Replace(header, `[7,13]`, `[7,14]`, 1)), "needs"},
		{"trailing bytes", append(append([]byte(nil), good...), 1, 2, 3, 4), "trailing"},
	}
	for _, c := range cases {
		_, _, err := ParseSafetensors(c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

func TestWriteSafetensorsValidates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	err := WriteSafetensors(path, []NamedTensor{{Name: "w", Shape: []int{2, 3}, Data: make([]float32, 5)}}, nil)
	if err == nil || !strings.Contains(err.Error(), "needs 6 values") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("a failed write left a file behind")
	}
}
