package nn

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// The safetensors format (as written by the Python `safetensors` package):
//
//	[8 bytes]  N, little-endian uint64: length of the header
//	[N bytes]  JSON object: name → {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}
//	           plus an optional "__metadata__": {string: string}
//	[rest]     the tensors' bytes, little-endian, row-major; offsets are relative to here
//
// osds stores float32 tensors only; other dtypes are rejected with a clear error.

// MaxHeaderBytes bounds the JSON header: a corrupt length must not make us allocate
// gigabytes before failing.
const MaxHeaderBytes = 100 << 20

// NamedTensor is one host-side float32 tensor of a safetensors file.
type NamedTensor struct {
	Name  string
	Shape []int
	Data  []float32
}

type headerEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// WriteSafetensors writes tensors (sorted by name) and metadata to path atomically: the
// bytes go to a temporary file in the same folder, are synced, and replace path by rename,
// so a crash never leaves a half-written file where a good one was.
func WriteSafetensors(path string, tensors []NamedTensor, metadata map[string]string) error {
	sorted := append([]NamedTensor(nil), tensors...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var off int64
	for _, t := range sorted {
		n := 1
		for _, s := range t.Shape {
			if s < 0 {
				return fmt.Errorf("safetensors: tensor %q has negative dimension in shape %v", t.Name, t.Shape)
			}
			n *= s
		}
		if n != len(t.Data) {
			return fmt.Errorf("safetensors: tensor %q: shape %v needs %d values, has %d", t.Name, t.Shape, n, len(t.Data))
		}
		if _, dup := header[t.Name]; dup || t.Name == "" {
			return fmt.Errorf("safetensors: tensor name %q is empty or repeated", t.Name)
		}
		header[t.Name] = headerEntry{DType: "F32", Shape: t.Shape, DataOffsets: [2]int64{off, off + 4*int64(n)}}
		off += 4 * int64(n)
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return err
	}
	// Pad the header with spaces to a multiple of 8 so the data is aligned for mmap.
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	var buf bytes.Buffer
	binary.Write(&buf, binary.LittleEndian, uint64(len(hj)))
	buf.Write(hj)
	raw := make([]byte, 4)
	for _, t := range sorted {
		for _, v := range t.Data {
			binary.LittleEndian.PutUint32(raw, math.Float32bits(v))
			buf.Write(raw)
		}
	}
	return WriteFileAtomic(path, buf.Bytes())
}

// WriteFileAtomic writes data to path through a synced temporary file beside it and a
// rename, so a reader sees the old file or the new one, never a part. Errors name path
// (the temporary file is an implementation detail) and what was wrong with it.
func WriteFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if fi, serr := os.Stat(path); serr == nil && fi.IsDir() {
		return fmt.Errorf("writing %s: it is a folder; name a file", path)
	}
	if fi, serr := os.Stat(dir); serr != nil {
		return fmt.Errorf("writing %s: its folder %s does not exist", path, dir)
	} else if !fi.IsDir() {
		return fmt.Errorf("writing %s: %s is not a folder", path, dir)
	}
	fail := func(e error) error {
		var pe *os.PathError
		if errors.As(e, &pe) {
			e = pe.Err
		}
		var le *os.LinkError
		if errors.As(e, &le) {
			e = le.Err
		}
		return fmt.Errorf("writing %s: %w", path, e)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fail(err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	// Sync the folder so the rename itself survives a crash.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// ReadSafetensors reads a safetensors file of float32 tensors. Every inconsistency —
// truncation, an oversized or malformed header, an unsupported dtype, offsets that do not
// match the shape, overlap or gaps — is an error naming the file and the tensor.
func ReadSafetensors(path string) ([]NamedTensor, map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	ts, md, err := ParseSafetensors(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return ts, md, nil
}

// ParseSafetensors decodes the bytes of a safetensors file (see ReadSafetensors).
func ParseSafetensors(data []byte) ([]NamedTensor, map[string]string, error) {
	if len(data) < 8 {
		return nil, nil, fmt.Errorf("safetensors: file is %d bytes, too short for the 8-byte header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeaderBytes {
		return nil, nil, fmt.Errorf("safetensors: header length %d exceeds the %d-byte limit (corrupt file?)", n, MaxHeaderBytes)
	}
	if uint64(len(data)-8) < n {
		return nil, nil, fmt.Errorf("safetensors: truncated: header claims %d bytes, file has %d after the length", n, len(data)-8)
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data[8 : 8+n]))
	if err := dec.Decode(&raw); err != nil {
		return nil, nil, fmt.Errorf("safetensors: header is not a JSON object: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("safetensors: trailing bytes after the JSON header")
	}
	body := data[8+n:]
	var md map[string]string
	type span struct {
		name       string
		begin, end int64
	}
	var spans []span
	var out []NamedTensor
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &md); err != nil {
				return nil, nil, fmt.Errorf("safetensors: __metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: bad header entry: %w", name, err)
		}
		if e.DType != "F32" {
			return nil, nil, fmt.Errorf("safetensors: tensor %q has dtype %q; osds reads only F32 (convert with tensor.float())", name, e.DType)
		}
		count := int64(1)
		for _, s := range e.Shape {
			if s < 0 {
				return nil, nil, fmt.Errorf("safetensors: tensor %q has negative dimension in shape %v", name, e.Shape)
			}
			count *= int64(s)
		}
		b, en := e.DataOffsets[0], e.DataOffsets[1]
		if b < 0 || en < b || en > int64(len(body)) {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: data offsets [%d, %d) outside the %d data bytes (truncated file?)", name, b, en, len(body))
		}
		if en-b != 4*count {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: shape %v needs %d bytes, offsets span %d", name, e.Shape, 4*count, en-b)
		}
		vals := make([]float32, count)
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[b+4*int64(i):]))
		}
		spans = append(spans, span{name, b, en})
		out = append(out, NamedTensor{Name: name, Shape: e.Shape, Data: vals})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	var pos int64
	for _, s := range spans {
		if s.begin != pos {
			if s.begin < pos {
				return nil, nil, fmt.Errorf("safetensors: tensor %q overlaps the tensor before it", s.name)
			}
			return nil, nil, fmt.Errorf("safetensors: %d unaccounted bytes before tensor %q", s.begin-pos, s.name)
		}
		pos = s.end
	}
	if pos != int64(len(body)) {
		return nil, nil, fmt.Errorf("safetensors: %d trailing data bytes belong to no tensor", int64(len(body))-pos)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, md, nil
}
