package compiler

import (
	"bytes"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The round-trip compares parse trees as the parser's own protocol-buffer
// bytes, walked with the schema, so no tree is ever built in Go: decoding
// and walking trees by reflection was most of the compile time of a large
// build.

// fieldKind says how a field of a parse-tree message is compared.
type fieldKind uint8

const (
	fieldRaw      fieldKind = iota // scalars, strings, packed lists: compared as bytes
	fieldMessage                   // a nested message: compared recursively
	fieldPosition                  // a source position: ignored
)

// wireSchema is, for one message type, the kind of each field number and
// the schema of the messages its message fields hold.
type wireSchema struct {
	kinds    map[protowire.Number]fieldKind
	children map[protowire.Number]*wireSchema
}

var parseResultSchema = sync.OnceValue(func() *wireSchema {
	seen := map[protoreflect.FullName]*wireSchema{}
	return schemaOf((&pg_query.ParseResult{}).ProtoReflect().Descriptor(), seen)
})

func schemaOf(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]*wireSchema) *wireSchema {
	if s, ok := seen[md.FullName()]; ok {
		return s
	}
	s := &wireSchema{kinds: map[protowire.Number]fieldKind{}, children: map[protowire.Number]*wireSchema{}}
	seen[md.FullName()] = s
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		switch {
		case isPosition(fd.Name()):
			s.kinds[fd.Number()] = fieldPosition
		case fd.Message() != nil && !fd.IsMap():
			s.kinds[fd.Number()] = fieldMessage
			s.children[fd.Number()] = schemaOf(fd.Message(), seen)
		default:
			s.kinds[fd.Number()] = fieldRaw
		}
	}
	return s
}

func isPosition(name protoreflect.Name) bool {
	return name == "location" || name == "stmt_location" || name == "stmt_len"
}

// wireField is one field of an encoded message.
type wireField struct {
	num   protowire.Number
	typ   protowire.Type
	value []byte // the encoded value (for bytes-typed fields, the payload)
}

// nextField reads the next field of b that is not a position; ok is false
// at the end of b; an error is reported as a malformed encoding.
func (s *wireSchema) nextField(b []byte) (f wireField, rest []byte, ok bool, malformed bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return f, nil, false, true
		}
		b = b[n:]
		var size int
		var value []byte
		if typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return f, nil, false, true
			}
			value, size = v, m
		} else {
			size = protowire.ConsumeFieldValue(num, typ, b)
			if size < 0 {
				return f, nil, false, true
			}
			value = b[:size]
		}
		b = b[size:]
		if s.kinds[num] == fieldPosition {
			continue
		}
		return wireField{num, typ, value}, b, true, false
	}
	return f, b, false, false
}

// sameWire reports whether two encodings of messages of schema s hold the
// same tree, positions aside. Both come from the same encoder, which writes
// fields in a fixed order, so the fields are compared pairwise.
func (s *wireSchema) sameWire(a, b []byte) bool {
	for {
		fa, restA, okA, badA := s.nextField(a)
		fb, restB, okB, badB := s.nextField(b)
		if badA || badB || okA != okB {
			return false
		}
		if !okA {
			return true
		}
		if fa.num != fb.num || fa.typ != fb.typ {
			return false
		}
		if s.kinds[fa.num] == fieldMessage && fa.typ == protowire.BytesType {
			if !s.children[fa.num].sameWire(fa.value, fb.value) {
				return false
			}
		} else if !bytes.Equal(fa.value, fb.value) {
			return false
		}
		a, b = restA, restB
	}
}

// stmtsField is the field number of ParseResult.stmts, looked up once.
var stmtsField = sync.OnceValue(func() protowire.Number {
	return (&pg_query.ParseResult{}).ProtoReflect().Descriptor().Fields().ByName("stmts").Number()
})

// countStatements counts the statements (ParseResult.stmts) of an encoded
// parse result.
func countStatements(b []byte) (int, bool) {
	s := parseResultSchema()
	stmts := stmtsField()
	n := 0
	for {
		f, rest, ok, bad := s.nextField(b)
		if bad {
			return 0, false
		}
		if !ok {
			return n, true
		}
		if f.num == stmts {
			n++
		}
		b = rest
	}
}
