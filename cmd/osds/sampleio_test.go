package main

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
)

// TestNPY checks the .npy layout NumPy reads: magic, version 1.0, a header whose end
// (newline included) is 64-byte aligned, the dict with dtype and shape, then the data.
func TestNPY(t *testing.T) {
	for _, shape := range [][]int{{5}, {3, 2}, {2, 4, 3, 1}} {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i) - 2.5
		}
		b := npy(data, shape)
		if string(b[:8]) != "\x93NUMPY\x01\x00" {
			t.Fatalf("magic %q", b[:8])
		}
		hl := int(binary.LittleEndian.Uint16(b[8:10]))
		if (10+hl)%64 != 0 || b[10+hl-1] != '\n' {
			t.Fatalf("shape %v: header of %d bytes is not 64-aligned with a newline", shape, hl)
		}
		header := string(b[10 : 10+hl])
		dims := make([]string, len(shape))
		for i, d := range shape {
			dims[i] = strconv.Itoa(d)
		}
		want := "'shape': (" + strings.Join(dims, ", ")
		if len(shape) == 1 {
			want += ","
		}
		if !strings.Contains(header, "'descr': '<f4'") || !strings.Contains(header, want+")") {
			t.Fatalf("header %q lacks the dtype or %s)", header, want)
		}
		body := b[10+hl:]
		if len(body) != 4*n {
			t.Fatalf("%d data bytes for %d values", len(body), n)
		}
		for i, v := range data {
			if got := math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:])); got != v {
				t.Fatalf("value %d: %v, want %v", i, got, v)
			}
		}
	}
}

// TestNPZ: the archive holds z, x and labels as .npy members.
func TestNPZ(t *testing.T) {
	s := &sampleSet{N: 2, D: 3, Z: make([]float32, 6), X: make([]float32, 2*4), H: 2, W: 2, C: 1, Labels: []int{1, 7}}
	raw, err := s.npz()
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b[:6]) != "\x93NUMPY" {
			t.Fatalf("%s is not .npy", f.Name)
		}
	}
	if strings.Join(names, ",") != "z.npy,x.npy,labels.npy" {
		t.Fatalf("members %v", names)
	}
}
