package onnx

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ONNX element types (TensorProto.DataType) that osds reads.
const (
	dtFloat   = 1
	dtUint8   = 2
	dtInt8    = 3
	dtUint16  = 4
	dtInt16   = 5
	dtInt32   = 6
	dtInt64   = 7
	dtBool    = 9
	dtFloat16 = 10
	dtDouble  = 11
	dtUint32  = 12
	dtUint64  = 13
)

var dtypeNames = map[int64]string{
	0: "UNDEFINED", dtFloat: "FLOAT", dtUint8: "UINT8", dtInt8: "INT8", dtUint16: "UINT16",
	dtInt16: "INT16", dtInt32: "INT32", dtInt64: "INT64", 8: "STRING", dtBool: "BOOL",
	dtFloat16: "FLOAT16", dtDouble: "DOUBLE", dtUint32: "UINT32", dtUint64: "UINT64",
	14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16",
}

func dtypeName(t int64) string {
	if s, ok := dtypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type %d", t)
}

// dtypeSize is the byte width of an element in raw_data; 0 for types osds cannot read.
func dtypeSize(t int64) int {
	switch t {
	case dtUint8, dtInt8, dtBool:
		return 1
	case dtUint16, dtInt16, dtFloat16:
		return 2
	case dtFloat, dtInt32, dtUint32:
		return 4
	case dtInt64, dtDouble, dtUint64:
		return 8
	}
	return 0
}

func isFloatType(t int64) bool { return t == dtFloat || t == dtDouble || t == dtFloat16 }

// hostTensor is a tensor known at build time: an initializer, a Constant, or a value
// folded from them (shape arithmetic). Values are held as float64 whatever the ONNX type
// (exact for the int64 sizes of shape arithmetic); dtype records the ONNX type.
type hostTensor struct {
	dtype int64
	shape []int
	data  []float64
}

func numel(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}

// ints returns the values as ints (shape and axis inputs), clamped to ±2⁴⁰: Slice ends
// of INT64_MAX ("to the end") must not wrap around in the conversion.
func (h *hostTensor) ints() []int {
	const big = 1 << 40
	out := make([]int, len(h.data))
	for i, v := range h.data {
		out[i] = int(math.Max(-big, math.Min(big, v)))
	}
	return out
}

func (h *hostTensor) float32s() []float32 {
	out := make([]float32, len(h.data))
	for i, v := range h.data {
		out[i] = float32(v)
	}
	return out
}

// decodeTensor reads an initializer or tensor attribute; dir is the model's folder, where
// external data lives.
func decodeTensor(t *tensorProto, dir, what string) (*hostTensor, error) {
	h := &hostTensor{dtype: t.dataType, shape: make([]int, len(t.dims))}
	n := 1
	for i, d := range t.dims {
		if d < 0 || d > math.MaxInt32 {
			return nil, fmt.Errorf("%s: dimension %d is %d", what, i, d)
		}
		h.shape[i] = int(d)
		n *= int(d)
		if n > 1<<31 {
			return nil, fmt.Errorf("%s: shape %v is too large", what, t.dims)
		}
	}
	if t.segment {
		return nil, fmt.Errorf("%s: segmented tensors are not supported", what)
	}
	size := dtypeSize(t.dataType)
	if size == 0 {
		return nil, fmt.Errorf("%s: element type %s is not supported (FLOAT, DOUBLE, FLOAT16 and integer types are)", what, dtypeName(t.dataType))
	}
	raw, hasRaw := t.raw, t.hasRaw
	if t.location == 1 {
		var err error
		if raw, err = readExternal(t, dir, what, n*size); err != nil {
			return nil, err
		}
		hasRaw = true
	}
	h.data = make([]float64, n)
	if hasRaw {
		if len(raw) != n*size {
			return nil, fmt.Errorf("%s: %d bytes of data for %d elements of %s (want %d)", what, len(raw), n, dtypeName(t.dataType), n*size)
		}
		for i := range h.data {
			h.data[i] = rawElem(raw[i*size:], t.dataType)
		}
		return h, nil
	}
	var got int
	switch t.dataType {
	case dtFloat:
		got = len(t.floats)
		for i := 0; i < min(n, got); i++ {
			h.data[i] = float64(t.floats[i])
		}
	case dtDouble:
		got = len(t.doubles)
		copy(h.data, t.doubles)
	case dtInt64:
		got = len(t.int64s)
		for i := 0; i < min(n, got); i++ {
			h.data[i] = float64(t.int64s[i])
		}
	case dtUint32, dtUint64:
		got = len(t.uint64s)
		for i := 0; i < min(n, got); i++ {
			h.data[i] = float64(t.uint64s[i])
		}
	case dtFloat16:
		got = len(t.int32s)
		for i := 0; i < min(n, got); i++ {
			h.data[i] = half(uint16(t.int32s[i]))
		}
	default: // int32, int16, int8, uint16, uint8, bool live in int32_data
		got = len(t.int32s)
		for i := 0; i < min(n, got); i++ {
			h.data[i] = float64(t.int32s[i])
		}
	}
	if got != n {
		return nil, fmt.Errorf("%s: %d values for shape %v (%d elements)", what, got, h.shape, n)
	}
	return h, nil
}

func rawElem(b []byte, t int64) float64 {
	switch t {
	case dtFloat:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
	case dtDouble:
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	case dtFloat16:
		return half(binary.LittleEndian.Uint16(b))
	case dtInt64:
		return float64(int64(binary.LittleEndian.Uint64(b)))
	case dtUint64:
		return float64(binary.LittleEndian.Uint64(b))
	case dtInt32:
		return float64(int32(binary.LittleEndian.Uint32(b)))
	case dtUint32:
		return float64(binary.LittleEndian.Uint32(b))
	case dtInt16:
		return float64(int16(binary.LittleEndian.Uint16(b)))
	case dtUint16:
		return float64(binary.LittleEndian.Uint16(b))
	case dtInt8:
		return float64(int8(b[0]))
	}
	return float64(b[0]) // uint8, bool
}

// half converts IEEE 754 binary16 bits to a float64.
func half(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * frac * math.Pow(2, -24)
	case 31:
		if frac == 0 {
			return sign * math.Inf(1)
		}
		return math.NaN()
	}
	return sign * (1 + frac/1024) * math.Pow(2, float64(exp-15))
}

// readExternal reads the bytes of a tensor stored outside the model file: the keys
// location (relative to the model's folder), offset and length of TensorProto.external_data.
func readExternal(t *tensorProto, dir, what string, want int) ([]byte, error) {
	loc := t.external["location"]
	if loc == "" {
		return nil, fmt.Errorf("%s: external data without a location", what)
	}
	if filepath.IsAbs(loc) || strings.HasPrefix(filepath.Clean(loc), "..") {
		return nil, fmt.Errorf("%s: external data location %q must be a relative path inside the model's folder", what, loc)
	}
	if dir == "" {
		return nil, fmt.Errorf("%s: external data %q, but the model was not read from a file (use Load with the model's path)", what, loc)
	}
	off, length := int64(0), int64(want)
	var err error
	if s, ok := t.external["offset"]; ok {
		if off, err = strconv.ParseInt(s, 10, 64); err != nil || off < 0 {
			return nil, fmt.Errorf("%s: external data offset %q is not a byte offset", what, s)
		}
	}
	if s, ok := t.external["length"]; ok {
		if length, err = strconv.ParseInt(s, 10, 64); err != nil || length < 0 {
			return nil, fmt.Errorf("%s: external data length %q is not a byte count", what, s)
		}
	}
	path := filepath.Join(dir, loc)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: external data: %w (the file must sit beside the model, as torch.onnx.export wrote it)", what, err)
	}
	defer f.Close()
	buf := make([]byte, length)
	if _, err := f.ReadAt(buf, off); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("%s: external data %s holds fewer than %d bytes at offset %d (truncated?)", what, path, length, off)
		}
		return nil, fmt.Errorf("%s: external data %s: %w", what, path, err)
	}
	return buf, nil
}
