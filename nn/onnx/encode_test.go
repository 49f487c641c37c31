package onnx

import (
	"encoding/binary"
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// A minimal ONNX encoder for the tests: small hand-made graphs (bad inputs, operators the
// PyTorch fixtures do not emit) and a rewrite of a fixture with external data.

func pbBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func pbString(b []byte, num protowire.Number, s string) []byte { return pbBytes(b, num, []byte(s)) }

func pbVarint(b []byte, num protowire.Number, v int64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func encModel(opset int64, graph []byte) []byte {
	var b []byte
	b = pbVarint(b, 1, 8)
	b = pbString(b, 2, "osds-test")
	b = pbBytes(b, 7, graph)
	return pbBytes(b, 8, pbVarint(nil, 2, opset))
}

type testGraph struct {
	nodes, inits, inputs, outputs [][]byte
}

func (g testGraph) encode() []byte {
	var b []byte
	for _, n := range g.nodes {
		b = pbBytes(b, 1, n)
	}
	b = pbString(b, 2, "test")
	for _, t := range g.inits {
		b = pbBytes(b, 5, t)
	}
	for _, v := range g.inputs {
		b = pbBytes(b, 11, v)
	}
	for _, v := range g.outputs {
		b = pbBytes(b, 12, v)
	}
	return b
}

func encNode(op, name string, in, out []string, attrs ...[]byte) []byte {
	var b []byte
	for _, s := range in {
		b = pbString(b, 1, s)
	}
	for _, s := range out {
		b = pbString(b, 2, s)
	}
	b = pbString(b, 3, name)
	b = pbString(b, 4, op)
	for _, a := range attrs {
		b = pbBytes(b, 5, a)
	}
	return b
}

func encAttrInt(name string, v int64) []byte {
	return pbVarint(pbVarint(pbString(nil, 1, name), 20, attrInt), 3, v)
}

func encAttrInts(name string, vs ...int64) []byte {
	b := pbVarint(pbString(nil, 1, name), 20, attrInts)
	for _, v := range vs {
		b = pbVarint(b, 8, v)
	}
	return b
}

func encAttrString(name, s string) []byte {
	return pbString(pbVarint(pbString(nil, 1, name), 20, attrString), 4, s)
}

// encTensor is a FLOAT initializer in raw_data.
func encTensor(name string, dims []int64, data []float32) []byte {
	var b []byte
	for _, d := range dims {
		b = pbVarint(b, 1, d)
	}
	b = pbVarint(b, 2, dtFloat)
	b = pbString(b, 8, name)
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return pbBytes(b, 9, raw)
}

// encInt64s is an INT64 initializer in int64_data (packed).
func encInt64s(name string, vs ...int64) []byte {
	b := pbVarint(nil, 1, int64(len(vs)))
	b = pbVarint(b, 2, dtInt64)
	b = pbString(b, 8, name)
	var packed []byte
	for _, v := range vs {
		packed = protowire.AppendVarint(packed, uint64(v))
	}
	return pbBytes(b, 7, packed)
}

// encValueInfo is a FLOAT tensor value; dims are ints (static) or strings (symbolic).
func encValueInfo(name string, dims ...any) []byte {
	var shape []byte
	for _, d := range dims {
		var dim []byte
		switch v := d.(type) {
		case int:
			dim = pbVarint(nil, 1, int64(v))
		case string:
			dim = pbString(nil, 2, v)
		}
		shape = pbBytes(shape, 1, dim)
	}
	tt := pbBytes(pbVarint(nil, 1, dtFloat), 2, shape)
	return pbBytes(pbString(nil, 1, name), 2, pbBytes(nil, 1, tt))
}

// rewrite copies the message b field by field, calling f on each field's number and raw
// payload (for bytes fields); f returns the replacement bytes of the whole field, or nil
// to keep it.
func rewrite(b []byte, f func(num protowire.Number, payload []byte) []byte) []byte {
	var out []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		field := b[:n+m]
		var repl []byte
		if typ == protowire.BytesType {
			payload, _ := protowire.ConsumeBytes(b[n:])
			repl = f(num, payload)
		}
		if repl != nil {
			out = append(out, repl...)
		} else {
			out = append(out, field...)
		}
		b = b[n+m:]
	}
	return out
}

// externalize moves the raw_data of every initializer of the model into one blob (each at
// a 64-byte aligned offset), referenced as external data at location, and returns the
// model and the blob.
func externalize(model []byte, location string) ([]byte, []byte) {
	var blob []byte
	out := rewrite(model, func(num protowire.Number, graph []byte) []byte {
		if num != 7 {
			return nil
		}
		g := rewrite(graph, func(num protowire.Number, tensor []byte) []byte {
			if num != 5 {
				return nil
			}
			var raw []byte
			t := rewrite(tensor, func(num protowire.Number, p []byte) []byte {
				if num == 9 {
					raw = p
					return []byte{} // drop raw_data
				}
				return nil
			})
			if raw == nil {
				return nil
			}
			for len(blob)%64 != 0 {
				blob = append(blob, 0)
			}
			off := len(blob)
			blob = append(blob, raw...)
			entry := func(k, v string) []byte { return pbString(pbString(nil, 1, k), 2, v) }
			t = pbBytes(t, 13, entry("location", location))
			t = pbBytes(t, 13, entry("offset", strconv.Itoa(off)))
			t = pbBytes(t, 13, entry("length", strconv.Itoa(len(raw))))
			t = pbVarint(t, 14, 1)
			return pbBytes(nil, 5, t)
		})
		return pbBytes(nil, 7, g)
	})
	return out, blob
}

func encAttrFloat(name string, v float32) []byte {
	b := pbVarint(pbString(nil, 1, name), 20, attrFloat)
	b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, math.Float32bits(v))
}
