package onnx

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The part of onnx.proto (proto2) that osds reads, decoded with protowire: plain structs
// with the fields a forward graph needs. Field numbers are those of onnx.proto; fields not
// listed are skipped, as protobuf readers do.

type modelProto struct {
	irVersion       int64
	opsets          []opsetID
	producer        string
	producerVersion string
	graph           *graphProto
}

type opsetID struct {
	domain  string
	version int64
}

type graphProto struct {
	name         string
	nodes        []*nodeProto
	initializers []*tensorProto
	sparse       int // sparse initializers (unsupported; counted for the error)
	inputs       []valueInfo
	outputs      []valueInfo
}

type nodeProto struct {
	inputs, outputs []string
	name, opType    string
	domain          string
	attrs           []*attribute
}

// Attribute types (AttributeProto.AttributeType).
const (
	attrFloat   = 1
	attrInt     = 2
	attrString  = 3
	attrTensor  = 4
	attrGraph   = 5
	attrFloats  = 6
	attrInts    = 7
	attrStrings = 8
)

type attribute struct {
	name    string
	typ     int64
	f       float32
	i       int64
	s       []byte
	t       *tensorProto
	floats  []float32
	ints    []int64
	strings [][]byte
	graph   bool // a subgraph (If, Loop, Scan: unsupported)
}

type tensorProto struct {
	name     string
	dims     []int64
	dataType int64
	raw      []byte
	hasRaw   bool
	floats   []float32
	int32s   []int64
	int64s   []int64
	doubles  []float64
	uint64s  []uint64
	external map[string]string
	location int64 // 0 DEFAULT, 1 EXTERNAL
	segment  bool
}

type valueInfo struct {
	name     string
	elemType int64
	hasShape bool
	dims     []dimension
}

type dimension struct {
	value int64
	param string
	known bool // dim_value set
}

// field is one decoded field of a message.
type field struct {
	num    protowire.Number
	typ    protowire.Type
	varint uint64
	fixed  uint64 // fixed32 or fixed64 payload
	bytes  []byte
}

// wireError is a malformed-message error with the path of the message being read.
type wireError struct {
	path string
	msg  string
}

func (e *wireError) Error() string { return e.path + ": " + e.msg }

// walk calls fn for every field of the message b; path names the message in errors.
func walk(b []byte, path string, fn func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return &wireError{path, "bad field tag: " + protowire.ParseError(n).Error()}
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.varint, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.fixed = uint64(v)
		case protowire.Fixed64Type:
			f.fixed, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.bytes, n = protowire.ConsumeBytes(b)
		case protowire.StartGroupType:
			n = protowire.ConsumeFieldValue(num, typ, b)
		default:
			return &wireError{path, fmt.Sprintf("field %d has invalid wire type %d", num, typ)}
		}
		if n < 0 {
			return &wireError{path, fmt.Sprintf("field %d: %v", num, protowire.ParseError(n))}
		}
		b = b[n:]
		if typ == protowire.StartGroupType {
			continue
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func (f field) want(path string, t protowire.Type) error {
	if f.typ != t {
		return &wireError{path, fmt.Sprintf("field %d has wire type %d, want %d", f.num, f.typ, t)}
	}
	return nil
}

func (f field) str(path string) (string, error) {
	if err := f.want(path, protowire.BytesType); err != nil {
		return "", err
	}
	return string(f.bytes), nil
}

func (f field) int(path string) (int64, error) {
	if err := f.want(path, protowire.VarintType); err != nil {
		return 0, err
	}
	return int64(f.varint), nil
}

// ints appends a repeated integer field, packed or not.
func (f field) ints(path string, dst []int64) ([]int64, error) {
	switch f.typ {
	case protowire.VarintType:
		return append(dst, int64(f.varint)), nil
	case protowire.BytesType:
		b := f.bytes
		for len(b) > 0 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, &wireError{path, fmt.Sprintf("packed field %d: %v", f.num, protowire.ParseError(n))}
			}
			dst = append(dst, int64(v))
			b = b[n:]
		}
		return dst, nil
	}
	return nil, &wireError{path, fmt.Sprintf("field %d has wire type %d, want an integer", f.num, f.typ)}
}

// floats appends a repeated float field, packed or not.
func (f field) floats(path string, dst []float32) ([]float32, error) {
	switch f.typ {
	case protowire.Fixed32Type:
		return append(dst, math.Float32frombits(uint32(f.fixed))), nil
	case protowire.BytesType:
		if len(f.bytes)%4 != 0 {
			return nil, &wireError{path, fmt.Sprintf("packed float field %d has %d bytes (not a multiple of 4)", f.num, len(f.bytes))}
		}
		for i := 0; i < len(f.bytes); i += 4 {
			v, _ := protowire.ConsumeFixed32(f.bytes[i:])
			dst = append(dst, math.Float32frombits(v))
		}
		return dst, nil
	}
	return nil, &wireError{path, fmt.Sprintf("field %d has wire type %d, want float", f.num, f.typ)}
}

// doubles appends a repeated double field, packed or not.
func (f field) doubles(path string, dst []float64) ([]float64, error) {
	switch f.typ {
	case protowire.Fixed64Type:
		return append(dst, math.Float64frombits(f.fixed)), nil
	case protowire.BytesType:
		if len(f.bytes)%8 != 0 {
			return nil, &wireError{path, fmt.Sprintf("packed double field %d has %d bytes (not a multiple of 8)", f.num, len(f.bytes))}
		}
		for i := 0; i < len(f.bytes); i += 8 {
			v, _ := protowire.ConsumeFixed64(f.bytes[i:])
			dst = append(dst, math.Float64frombits(v))
		}
		return dst, nil
	}
	return nil, &wireError{path, fmt.Sprintf("field %d has wire type %d, want double", f.num, f.typ)}
}

func parseModel(b []byte) (*modelProto, error) {
	const path = "ModelProto"
	m := &modelProto{}
	err := walk(b, path, func(f field) error {
		var err error
		switch f.num {
		case 1:
			m.irVersion, err = f.int(path + ".ir_version")
		case 2:
			m.producer, err = f.str(path + ".producer_name")
		case 3:
			m.producerVersion, err = f.str(path + ".producer_version")
		case 7:
			if err = f.want(path+".graph", protowire.BytesType); err == nil {
				m.graph, err = parseGraph(f.bytes, path+".graph")
			}
		case 8:
			var o opsetID
			if err = f.want(path+".opset_import", protowire.BytesType); err == nil {
				o, err = parseOpset(f.bytes, fmt.Sprintf("%s.opset_import[%d]", path, len(m.opsets)))
				m.opsets = append(m.opsets, o)
			}
		}
		return err
	})
	return m, err
}

func parseOpset(b []byte, path string) (opsetID, error) {
	var o opsetID
	err := walk(b, path, func(f field) error {
		var err error
		switch f.num {
		case 1:
			o.domain, err = f.str(path + ".domain")
		case 2:
			o.version, err = f.int(path + ".version")
		}
		return err
	})
	return o, err
}

func parseGraph(b []byte, path string) (*graphProto, error) {
	g := &graphProto{}
	err := walk(b, path, func(f field) error {
		var err error
		sub := func(kind string, n int) string { return fmt.Sprintf("%s.%s[%d]", path, kind, n) }
		switch f.num {
		case 1, 5, 11, 12:
			if err = f.want(path, protowire.BytesType); err != nil {
				return err
			}
		}
		switch f.num {
		case 1:
			var n *nodeProto
			n, err = parseNode(f.bytes, sub("node", len(g.nodes)))
			g.nodes = append(g.nodes, n)
		case 2:
			g.name, err = f.str(path + ".name")
		case 5:
			var t *tensorProto
			t, err = parseTensor(f.bytes, sub("initializer", len(g.initializers)))
			g.initializers = append(g.initializers, t)
		case 15:
			g.sparse++
		case 11:
			var v valueInfo
			v, err = parseValueInfo(f.bytes, sub("input", len(g.inputs)))
			g.inputs = append(g.inputs, v)
		case 12:
			var v valueInfo
			v, err = parseValueInfo(f.bytes, sub("output", len(g.outputs)))
			g.outputs = append(g.outputs, v)
		}
		return err
	})
	return g, err
}

func parseNode(b []byte, path string) (*nodeProto, error) {
	n := &nodeProto{}
	err := walk(b, path, func(f field) error {
		var err error
		var s string
		switch f.num {
		case 1:
			s, err = f.str(path + ".input")
			n.inputs = append(n.inputs, s)
		case 2:
			s, err = f.str(path + ".output")
			n.outputs = append(n.outputs, s)
		case 3:
			n.name, err = f.str(path + ".name")
		case 4:
			n.opType, err = f.str(path + ".op_type")
		case 7:
			n.domain, err = f.str(path + ".domain")
		case 5:
			var a *attribute
			if err = f.want(path+".attribute", protowire.BytesType); err == nil {
				a, err = parseAttribute(f.bytes, fmt.Sprintf("%s.attribute[%d]", path, len(n.attrs)))
				n.attrs = append(n.attrs, a)
			}
		}
		return err
	})
	return n, err
}

func parseAttribute(b []byte, path string) (*attribute, error) {
	a := &attribute{}
	err := walk(b, path, func(f field) error {
		var err error
		switch f.num {
		case 1:
			a.name, err = f.str(path + ".name")
		case 20:
			a.typ, err = f.int(path + ".type")
		case 2:
			if err = f.want(path+".f", protowire.Fixed32Type); err == nil {
				a.f = math.Float32frombits(uint32(f.fixed))
			}
		case 3:
			a.i, err = f.int(path + ".i")
		case 4:
			if err = f.want(path+".s", protowire.BytesType); err == nil {
				a.s = f.bytes
			}
		case 5:
			if err = f.want(path+".t", protowire.BytesType); err == nil {
				a.t, err = parseTensor(f.bytes, path+".t")
			}
		case 6, 11:
			a.graph = true
		case 7:
			a.floats, err = f.floats(path+".floats", a.floats)
		case 8:
			a.ints, err = f.ints(path+".ints", a.ints)
		case 9:
			if err = f.want(path+".strings", protowire.BytesType); err == nil {
				a.strings = append(a.strings, f.bytes)
			}
		}
		return err
	})
	return a, err
}

func parseTensor(b []byte, path string) (*tensorProto, error) {
	t := &tensorProto{}
	err := walk(b, path, func(f field) error {
		var err error
		switch f.num {
		case 1:
			t.dims, err = f.ints(path+".dims", t.dims)
		case 2:
			t.dataType, err = f.int(path + ".data_type")
		case 3:
			t.segment = true
		case 4:
			t.floats, err = f.floats(path+".float_data", t.floats)
		case 5:
			t.int32s, err = f.ints(path+".int32_data", t.int32s)
		case 7:
			t.int64s, err = f.ints(path+".int64_data", t.int64s)
		case 8:
			t.name, err = f.str(path + ".name")
		case 9:
			if err = f.want(path+".raw_data", protowire.BytesType); err == nil {
				t.raw, t.hasRaw = f.bytes, true
			}
		case 10:
			t.doubles, err = f.doubles(path+".double_data", t.doubles)
		case 11:
			var us []int64
			us, err = f.ints(path+".uint64_data", nil)
			for _, u := range us {
				t.uint64s = append(t.uint64s, uint64(u))
			}
		case 13:
			if err = f.want(path+".external_data", protowire.BytesType); err != nil {
				return err
			}
			var k, v string
			err = walk(f.bytes, path+".external_data", func(e field) error {
				var err error
				switch e.num {
				case 1:
					k, err = e.str(path + ".external_data.key")
				case 2:
					v, err = e.str(path + ".external_data.value")
				}
				return err
			})
			if t.external == nil {
				t.external = map[string]string{}
			}
			t.external[k] = v
		case 14:
			t.location, err = f.int(path + ".data_location")
		}
		return err
	})
	return t, err
}

func parseValueInfo(b []byte, path string) (valueInfo, error) {
	var v valueInfo
	err := walk(b, path, func(f field) error {
		var err error
		switch f.num {
		case 1:
			v.name, err = f.str(path + ".name")
		case 2:
			if err = f.want(path+".type", protowire.BytesType); err != nil {
				return err
			}
			err = walk(f.bytes, path+".type", func(tf field) error {
				if tf.num != 1 { // tensor_type; sequences, maps and optionals are not tensors
					return nil
				}
				if err := tf.want(path+".type.tensor_type", protowire.BytesType); err != nil {
					return err
				}
				return walk(tf.bytes, path+".type.tensor_type", func(ef field) error {
					var err error
					switch ef.num {
					case 1:
						v.elemType, err = ef.int(path + ".type.tensor_type.elem_type")
					case 2:
						if err = ef.want(path+".type.tensor_type.shape", protowire.BytesType); err != nil {
							return err
						}
						v.hasShape = true
						err = walk(ef.bytes, path+".shape", func(df field) error {
							if df.num != 1 {
								return nil
							}
							if err := df.want(path+".shape.dim", protowire.BytesType); err != nil {
								return err
							}
							d, err := parseDim(df.bytes, path+".shape.dim")
							v.dims = append(v.dims, d)
							return err
						})
					}
					return err
				})
			})
		}
		return err
	})
	return v, err
}

func parseDim(b []byte, path string) (dimension, error) {
	var d dimension
	err := walk(b, path, func(f field) error {
		var err error
		switch f.num {
		case 1:
			d.value, err = f.int(path + ".dim_value")
			d.known = true
		case 2:
			d.param, err = f.str(path + ".dim_param")
		}
		return err
	})
	return d, err
}
