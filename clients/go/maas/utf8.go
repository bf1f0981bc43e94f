package maas

// String fields that are not UTF-8. protobuf-go refuses to marshal a string field that is not UTF-8, and grpc-go
// then fails the call with INTERNAL "grpc: error while marshaling: string field contains invalid UTF-8": a code
// that means a server bug, and no field named. Every request is checked before it is sent instead: a string that is
// not UTF-8 fails the call with INVALID_ARGUMENT naming the field by its path ("config.labels[\"team\"]",
// "batches[2].examples[0].label") and the offset of its first invalid byte, as the Python client names the example
// and the character.

import (
	"cmp"
	"fmt"
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	discriminativev1 "github.com/maas-project/maas/clients/go/gen/maas/discriminative/v1"
)

// textFields are the string fields that hold texts to classify: the *Bytes methods send those as bytes.
var textFields = map[protoreflect.FullName]bool{
	fieldName(&discriminativev1.ClassifyRequest{}, "texts"):  true,
	fieldName(&discriminativev1.VectorizeRequest{}, "texts"): true,
	fieldName(&discriminativev1.LabeledText{}, "text"):       true,
}

func fieldName(m proto.Message, name protoreflect.Name) protoreflect.FullName {
	fd := m.ProtoReflect().Descriptor().Fields().ByName(name)
	if fd == nil {
		panic(fmt.Sprintf("maas: %s has no field %q", m.ProtoReflect().Descriptor().FullName(), name))
	}
	return fd.FullName()
}

// checkRequest returns why req (a proto.Message, or a *wireRequest of the *Bytes methods) cannot be sent, nil when
// it can: its first string field, in field order, that is not UTF-8, named by prefix and its path.
func checkRequest(req any, prefix string) error {
	switch r := req.(type) {
	case *wireRequest:
		if r.check != nil {
			return r.check(prefix)
		}
	case proto.Message:
		return checkStrings(r.ProtoReflect(), prefix, nil)
	}
	return nil
}

// checkStrings is checkRequest of a message, whose fields are named prefix + their proto name; skip (when not nil)
// is a field left unchecked.
func checkStrings(m protoreflect.Message, prefix string, skip protoreflect.FieldDescriptor) error {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd == skip || !m.Has(fd) {
			continue
		}
		path := prefix + string(fd.Name())
		v := m.Get(fd)
		switch {
		case fd.IsList():
			// A list of numbers holds no string: a request's rows (2^20 doubles) took 60 times the time of
			// marshaling them when every element was visited with its path formatted.
			if !mayHoldStrings(fd) {
				continue
			}
			list := v.List()
			for j := 0; j < list.Len(); j++ {
				if fd.Kind() == protoreflect.StringKind && utf8.ValidString(list.Get(j).String()) {
					continue
				}
				if err := checkValue(fd, list.Get(j), fmt.Sprintf("%s[%d]", path, j)); err != nil {
					return err
				}
			}
		case fd.IsMap():
			if !mayHoldStrings(fd.MapKey()) && !mayHoldStrings(fd.MapValue()) {
				continue
			}
			entries := v.Map()
			keys := make([]protoreflect.MapKey, 0, entries.Len())
			entries.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			slices.SortFunc(keys, func(a, b protoreflect.MapKey) int { return cmp.Compare(a.String(), b.String()) })
			for _, k := range keys {
				entry := fmt.Sprintf("%s[%q]", path, k.String())
				if err := checkValue(fd.MapKey(), k.Value(), entry+" (the key)"); err != nil {
					return err
				}
				if err := checkValue(fd.MapValue(), entries.Get(k), entry); err != nil {
					return err
				}
			}
		default:
			if err := checkValue(fd, v, path); err != nil {
				return err
			}
		}
	}
	return nil
}

// mayHoldStrings says whether a value of field fd is or may contain a string.
func mayHoldStrings(fd protoreflect.FieldDescriptor) bool {
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.MessageKind, protoreflect.GroupKind:
		return true
	}
	return false
}

// checkValue checks one value of field fd (a list element, a map key or value, or the field itself) named path.
func checkValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string) error {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return checkUTF8(v.String(), path, textFields[fd.FullName()])
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return checkStrings(v.Message(), path+".", nil)
	}
	return nil
}

// checkUTF8 is nil when s is UTF-8, else an error naming path and the offset of the first invalid byte (text: s
// is a text to classify, which the *Bytes methods send as it is).
func checkUTF8(s, path string, text bool) error {
	if utf8.ValidString(s) {
		return nil
	}
	offset := 0
	for offset < len(s) {
		r, size := utf8.DecodeRuneInString(s[offset:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		offset += size
	}
	hint := ""
	if text {
		hint = "; the *Bytes methods (ClassifyBytes, TrainBytes, ...) send texts that are not UTF-8, under the " +
			"model's decode_error"
	}
	return fmt.Errorf("%s: invalid UTF-8 at byte %d of %d (a protobuf string field carries UTF-8 text only)%s",
		path, offset, len(s), hint)
}
