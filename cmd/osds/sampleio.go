package main

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"osds/nn"
)

// sampleSet is what `osds sample` draws, for writing in any of the formats: the noise z
// [N, D], the images x = f(z) [N, H, W, C] (nil for a synthetic target, whose samples
// are z) and each sample's condition (nil unless amortised).
type sampleSet struct {
	Z       []float32
	N, D    int
	X       []float32
	H, W, C int
	Labels  []int
}

// sampleFormats are the extensions --out understands, with what each file holds.
const sampleFormats = ".png (a grid of f(z)), .npz (NumPy: z, x and labels), .npy (NumPy: x, or z for a synthetic target), .safetensors (z, x and labels), .csv (z and labels; d ≤ 64)"

// checkSampleOut says whether path has a format `osds sample` writes, before any work.
func checkSampleOut(path string, posterior bool, d int) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("writing %s: it is a folder; name a file (%s)", path, sampleFormats)
	}
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".png":
		if !posterior {
			return fmt.Errorf("--out %s: a synthetic target's samples are points, not images; write them as .npz, .npy, .safetensors or .csv", path)
		}
	case ".npz", ".npy", ".safetensors":
	case ".csv":
		if d > 64 {
			return fmt.Errorf("--out %s: CSV is for small dimensions (d ≤ 64, this sampler has d = %d); use .npz or .safetensors", path, d)
		}
	default:
		return fmt.Errorf("--out %s: unknown format %q; want %s", path, ext, sampleFormats)
	}
	return nil
}

// write writes the set to path in the format of its extension (not .png), atomically.
func (s *sampleSet) write(path string) error {
	var data []byte
	var err error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npz":
		data, err = s.npz()
	case ".npy":
		if s.X != nil {
			data = npy(s.X, []int{s.N, s.H, s.W, s.C})
		} else {
			data = npy(s.Z, []int{s.N, s.D})
		}
	case ".safetensors":
		return nn.WriteSafetensors(path, s.tensors(), map[string]string{"format": "osds-samples-1"})
	case ".csv":
		data = s.csv()
	default:
		return fmt.Errorf("--out %s: unknown format; want %s", path, sampleFormats)
	}
	if err != nil {
		return err
	}
	return nn.WriteFileAtomic(path, data)
}

// tensors are z, x and the labels (as float32) with their shapes.
func (s *sampleSet) tensors() []nn.NamedTensor {
	ts := []nn.NamedTensor{{Name: "z", Shape: []int{s.N, s.D}, Data: s.Z}}
	if s.X != nil {
		ts = append(ts, nn.NamedTensor{Name: "x", Shape: []int{s.N, s.H, s.W, s.C}, Data: s.X})
	}
	if s.Labels != nil {
		lab := make([]float32, len(s.Labels))
		for i, y := range s.Labels {
			lab[i] = float32(y)
		}
		ts = append(ts, nn.NamedTensor{Name: "labels", Shape: []int{s.N}, Data: lab})
	}
	return ts
}

// npz is a NumPy archive: a zip of one .npy per array (np.load(path)["z"]).
func (s *sampleSet) npz() ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, t := range s.tensors() {
		w, err := zw.Create(t.Name + ".npy")
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(npy(t.Data, t.Shape)); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// npy encodes a little-endian float32 array in NumPy's .npy format, version 1.0: the
// magic "\x93NUMPY", the version, a header length, and a Python dict literal padded with
// spaces and a newline so that the data starts at a multiple of 64 bytes.
func npy(data []float32, shape []int) []byte {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	for (10+len(header)+1)%64 != 0 {
		header += " "
	}
	header += "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	raw := make([]byte, 4)
	for _, v := range data {
		binary.LittleEndian.PutUint32(raw, math.Float32bits(v))
		b.Write(raw)
	}
	return b.Bytes()
}

// csv is one row per sample: z_0..z_{D−1} (and the label), with a header line.
func (s *sampleSet) csv() []byte {
	var b strings.Builder
	for j := 0; j < s.D; j++ {
		if j > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "z%d", j)
	}
	if s.Labels != nil {
		b.WriteString(",label")
	}
	b.WriteByte('\n')
	for i := 0; i < s.N; i++ {
		for j := 0; j < s.D; j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatFloat(float64(s.Z[i*s.D+j]), 'g', -1, 32))
		}
		if s.Labels != nil {
			fmt.Fprintf(&b, ",%d", s.Labels[i])
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}
