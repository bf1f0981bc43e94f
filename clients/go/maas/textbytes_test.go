package maas_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	commonv1 "github.com/maas-project/maas/clients/go/gen/maas/common/v1"
	discriminativev1 "github.com/maas-project/maas/clients/go/gen/maas/discriminative/v1"
	"github.com/maas-project/maas/clients/go/maas"
)

// ---------------------------------------------------------------------------------------------------------
// Encoding: for UTF-8 texts the *Bytes methods send exactly proto.Marshal's bytes of the ordinary request.

// fill sets every field of m (one member of each oneof, 1-3 elements of each list and map) to random values;
// messages nest up to depth 4.
func fill(r *rand.Rand, m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		if oneof := fields.Get(i).ContainingOneof(); oneof == nil || oneof.IsSynthetic() {
			fillField(r, m, fields.Get(i), depth)
		}
	}
	oneofs := m.Descriptor().Oneofs()
	for i := 0; i < oneofs.Len(); i++ {
		if members := oneofs.Get(i).Fields(); !oneofs.Get(i).IsSynthetic() {
			fillField(r, m, members.Get(r.IntN(members.Len())), depth)
		}
	}
}

func fillField(r *rand.Rand, m protoreflect.Message, fd protoreflect.FieldDescriptor, depth int) {
	switch {
	case fd.IsMap():
		entries := m.Mutable(fd).Map()
		for n := 1 + r.IntN(3); n > 0; n-- {
			value := randomScalar(r, fd.MapValue())
			if fd.MapValue().Message() != nil {
				value = entries.NewValue()
				fillNested(r, value.Message(), depth)
			}
			entries.Set(randomScalar(r, fd.MapKey()).MapKey(), value)
		}
	case fd.IsList():
		list := m.Mutable(fd).List()
		for n := 1 + r.IntN(3); n > 0; n-- {
			if fd.Message() != nil {
				value := list.NewElement()
				fillNested(r, value.Message(), depth)
				list.Append(value)
			} else {
				list.Append(randomScalar(r, fd))
			}
		}
	case fd.Message() != nil:
		fillNested(r, m.Mutable(fd).Message(), depth)
	default:
		m.Set(fd, randomScalar(r, fd))
	}
}

func fillNested(r *rand.Rand, m protoreflect.Message, depth int) {
	if depth < 4 {
		fill(r, m, depth+1)
	}
}

func randomScalar(r *rand.Rand, fd protoreflect.FieldDescriptor) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(r.IntN(4) != 0)
	case protoreflect.EnumKind:
		values := fd.Enum().Values()
		return protoreflect.ValueOfEnum(values.Get(r.IntN(values.Len())).Number())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(r.Uint32()) >> r.IntN(32))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(r.Uint64()) >> r.IntN(64))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(r.Uint32() >> r.IntN(32))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(r.Uint64() >> r.IntN(64))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(r.NormFloat64()))
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(r.NormFloat64() * 1e3)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(randomText(r))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte(randomText(r)))
	}
	panic(fmt.Sprintf("randomScalar: %v", fd.Kind()))
}

// randomText is UTF-8 of 1- to 4-byte code points: empty, short, or long enough for 2- and 3-byte length prefixes.
func randomText(r *rand.Rand) string {
	alphabet := []rune("abc XYZ09.,\n\x00éßΩ€中😀\uFFFD")
	var n int
	switch r.IntN(8) {
	case 0:
		n = 0
	case 1:
		n = 100 + r.IntN(200)
	case 2:
		n = 5000 + r.IntN(2000)
	default:
		n = 1 + r.IntN(30)
	}
	var b strings.Builder
	for range n {
		b.WriteRune(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

// withUnknown gives m an unknown field half the time (proto.Marshal writes unknown fields last).
func withUnknown(r *rand.Rand, m protoreflect.Message) {
	if r.IntN(2) == 0 {
		unknown := protowire.AppendTag(nil, 1000+protowire.Number(r.IntN(100)), protowire.VarintType)
		m.SetUnknown(protowire.AppendVarint(unknown, r.Uint64()))
	}
}

// asBytes is a LabeledText as a LabeledBytes. A field that LabeledText gains is filled by fill and dropped here,
// which fails TestBytesEncodingEqualsProtoMarshal until LabeledBytes carries it.
func asBytes(e *discriminativev1.LabeledText) maas.LabeledBytes {
	return maas.LabeledBytes{Text: []byte(e.GetText()), Label: e.GetLabel(), Weight: e.Weight}
}

func TestBytesEncodingEqualsProtoMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(20260817, 1))
	for round := range 300 {
		for _, req := range []proto.Message{&discriminativev1.ClassifyRequest{}, &discriminativev1.VectorizeRequest{}} {
			m := req.ProtoReflect()
			fill(r, m, 0)
			withUnknown(r, m)
			want, err := proto.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			field := m.Descriptor().Fields().ByName("texts")
			var texts [][]byte
			for i := 0; i < m.Get(field).List().Len(); i++ {
				texts = append(texts, []byte(m.Get(field).List().Get(i).String()))
			}
			// Every text given as bytes, or the first k in the request and the rest as bytes.
			k := r.IntN(len(texts) + 1)
			for _, own := range []int{0, k} {
				split := proto.Clone(req)
				list := split.ProtoReflect().Mutable(field).List()
				list.Truncate(own)
				got, err := maas.MarshalTexts(split, texts[own:])
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("round %d: %s with %d of %d texts as bytes:\n got %x\nwant %x", round,
						m.Descriptor().Name(), len(texts)-own, len(texts), got, want)
				}
			}
		}

		examples := make([]*discriminativev1.LabeledText, r.IntN(6))
		raw := make([]maas.LabeledBytes, len(examples))
		for i := range examples {
			examples[i] = &discriminativev1.LabeledText{}
			fill(r, examples[i].ProtoReflect(), 0)
			if r.IntN(3) == 0 {
				examples[i].Weight = nil
			}
			raw[i] = asBytes(examples[i])
		}
		batch := &discriminativev1.TextBatch{Examples: examples}
		for _, c := range []struct {
			request proto.Message
			marshal func([]maas.LabeledBytes) ([]byte, error)
		}{
			{&discriminativev1.TrainRequest{Message: &discriminativev1.TrainRequest_Batch{Batch: batch}}, maas.MarshalTrainBatch},
			{&discriminativev1.EvaluateRequest{Message: &discriminativev1.EvaluateRequest_Batch{Batch: batch}}, maas.MarshalEvaluateBatch},
		} {
			want, err := proto.Marshal(c.request)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.marshal(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("round %d: %T with %d examples:\n got %x\nwant %x", round, c.request, len(examples), got, want)
			}
		}
	}
}

// fieldValues returns the length-delimited values of field number in the top-level fields of b.
func fieldValues(t *testing.T, b []byte, number protowire.Number) [][]byte {
	t.Helper()
	var values [][]byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			t.Fatalf("bad field %d: %v", num, protowire.ParseError(m))
		}
		if num == number {
			value, _ := protowire.ConsumeBytes(b)
			values = append(values, value)
		}
		b = b[m:]
	}
	return values
}

// Texts that are not UTF-8 are written as they are, where proto.Marshal refuses them.
func TestBytesEncodingKeepsTextsThatAreNotUTF8(t *testing.T) {
	texts := [][]byte{[]byte("caf\xe9"), {}, []byte("\xff\xfe"), []byte("ok")}
	strs := make([]string, len(texts))
	for i, text := range texts {
		strs[i] = string(text)
	}
	if _, err := proto.Marshal(&discriminativev1.ClassifyRequest{Texts: strs}); err == nil {
		t.Fatal("proto.Marshal accepted texts that are not UTF-8: this test no longer shows anything")
	}
	got, err := maas.MarshalTexts(&discriminativev1.ClassifyRequest{Model: maas.Ref("m", 3), TopK: 2}, texts)
	if err != nil {
		t.Fatal(err)
	}
	values := fieldValues(t, got, 2)
	for i := range max(len(values), len(texts)) {
		if i >= len(values) || i >= len(texts) || !bytes.Equal(values[i], texts[i]) {
			t.Fatalf("texts field holds %q, want %q", values, texts)
		}
	}
	var parsed discriminativev1.ClassifyRequest
	if err := proto.Unmarshal(withoutField(t, got, 2), &parsed); err != nil ||
		!proto.Equal(&parsed, &discriminativev1.ClassifyRequest{Model: maas.Ref("m", 3), TopK: 2}) {
		t.Fatalf("the other fields parse as %v (%v)", &parsed, err)
	}

	examples := []maas.LabeledBytes{{Text: []byte("cr\xe8me"), Label: "food", Weight: proto.Float64(2)}, {Label: "empty"}}
	got, err = maas.MarshalTrainBatch(examples)
	if err != nil {
		t.Fatal(err)
	}
	batches := fieldValues(t, got, 2)
	if len(batches) != 1 {
		t.Fatalf("%d batch fields", len(batches))
	}
	encoded := fieldValues(t, batches[0], 1)
	if len(encoded) != len(examples) {
		t.Fatalf("%d examples, want %d", len(encoded), len(examples))
	}
	for i, e := range encoded {
		text := fieldValues(t, e, 1)
		if len(text) > 1 || !bytes.Equal(bytes.Join(text, nil), examples[i].Text) {
			t.Fatalf("example %d: text fields %q, want %q", i, text, examples[i].Text)
		}
		var rest discriminativev1.LabeledText
		if err := proto.Unmarshal(withoutField(t, e, 1), &rest); err != nil ||
			!proto.Equal(&rest, &discriminativev1.LabeledText{Label: examples[i].Label, Weight: examples[i].Weight}) {
			t.Fatalf("example %d: the other fields parse as %v (%v)", i, &rest, err)
		}
	}
}

// withoutField is b without its top-level occurrences of field number.
func withoutField(t *testing.T, b []byte, number protowire.Number) []byte {
	t.Helper()
	var out []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if n < 0 || m < 0 {
			t.Fatal("bad wire data")
		}
		if num != number {
			out = append(out, b[:n+m]...)
		}
		b = b[n+m:]
	}
	return out
}

// ---------------------------------------------------------------------------------------------------------
// Live: texts that are not UTF-8 meet the model's decode_error.

// repair is Python's bytes.decode("utf-8", errors) for errors="replace" (with "\uFFFD") and "ignore" (with ""):
// each maximal subpart of an ill-formed sequence (Unicode ch. 3, "U+FFFD Substitution of Maximal Subparts": the
// longest prefix of a well-formed sequence, else one byte) becomes with.
func repair(b []byte, with string) string {
	var out strings.Builder
	for i := 0; i < len(b); {
		if r, n := utf8.DecodeRune(b[i:]); r != utf8.RuneError || n > 1 {
			out.Write(b[i : i+n])
			i += n
			continue
		}
		out.WriteString(with)
		i += maximalSubpart(b[i:])
	}
	return out.String()
}

// maximalSubpart is the length of the maximal subpart at the start of b, which is not a well-formed sequence
// (Unicode Table 3-7 gives the byte ranges).
func maximalSubpart(b []byte) int {
	lo, hi := byte(0x80), byte(0xBF) // the second byte's range; later bytes are always 80..BF
	var follow int
	switch lead := b[0]; {
	case lead >= 0xC2 && lead <= 0xDF:
		follow = 1
	case lead == 0xE0:
		follow, lo = 2, 0xA0
	case lead == 0xED:
		follow, hi = 2, 0x9F
	case lead >= 0xE1 && lead <= 0xEF:
		follow = 2
	case lead == 0xF0:
		follow, lo = 3, 0x90
	case lead == 0xF4:
		follow, hi = 3, 0x8F
	case lead >= 0xF1 && lead <= 0xF3:
		follow = 3
	default:
		return 1
	}
	n := 1
	for n <= follow && n < len(b) && b[n] >= lo && b[n] <= hi {
		n, lo, hi = n+1, 0x80, 0xBF
	}
	return n
}

// firstInvalid is the byte offset of b's first ill-formed sequence (-1: b is UTF-8).
func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// latin1Corpus: Latin-1 texts and broken UTF-8 (a truncated 3- and 4-byte sequence, an encoded surrogate), one
// UTF-8 text and an empty one; under replace and ignore the repairs give different tokens ("cr\xe8me": cr + me, or
// crme).
var latin1Corpus = []maas.LabeledBytes{
	{Text: []byte("caf\xe9 cr\xe8me br\xfbl\xe9e"), Label: "food"},
	{Text: []byte("cr\xe8me fra\xeeche on the cr\xeapes"), Label: "food", Weight: proto.Float64(2)},
	{Text: []byte("garlic bread and caf\xe9 au lait"), Label: "food"},
	{Text: []byte("the goal\xff keeper\x80 saved it"), Label: "sports"},
	{Text: []byte("a late goal in the derby \xe2\x82 match"), Label: "sports"},
	{Text: []byte("the striker\xed\xa0\x80scored twice"), Label: "sports", Weight: proto.Float64(0.5)},
	{Text: []byte("faster chip\xf0\x9f\x98more memory"), Label: "tech"},
	{Text: []byte("na\xc3\xafve kernel driver update"), Label: "tech"},
	{Text: []byte("the phone's caf\xe9 app"), Label: "tech"},
	{Text: nil, Label: "tech"},
}

var latin1Queries = [][]byte{
	[]byte("caf\xe9 cr\xe8me"),
	[]byte("goal\xff keeper in the cr\xeapes"),
	[]byte("chip\xf0\x9f\x98more memory"),
	[]byte("striker\xed\xa0\x80scored"),
	[]byte("plain bread, na\xc3\xafve"),
	[]byte("\xe2\x82"),
}

func repairAll(texts [][]byte, with string) []string {
	out := make([]string, len(texts))
	for i, text := range texts {
		out[i] = repair(text, with)
	}
	return out
}

func repairExamples(examples []maas.LabeledBytes, with string) []*discriminativev1.LabeledText {
	out := make([]*discriminativev1.LabeledText, len(examples))
	for i, e := range examples {
		out[i] = &discriminativev1.LabeledText{Text: repair(e.Text, with), Label: e.Label, Weight: e.Weight}
	}
	return out
}

// decodeErrorConfig is CountVectorizer(decode_error=mode) with the word analyzer (char false) or char n-grams of
// 1 and 2 code points (char true: U+FFFD counts as a feature, so the number of replacements shows).
func decodeErrorConfig(name string, mode discriminativev1.DecodeError, char bool) *discriminativev1.TrainConfig {
	options := &discriminativev1.TextOptions{DecodeError: mode}
	if char {
		options.Analyzer, options.NgramMin, options.NgramMax = discriminativev1.Analyzer_ANALYZER_CHAR, 1, 2
	}
	return &discriminativev1.TrainConfig{Name: name, Vectorizer: &discriminativev1.VectorizerConfig{
		Kind: &discriminativev1.VectorizerConfig_Count{Count: &discriminativev1.CountVectorizerConfig{Text: options}}}}
}

// goRepair is Go's conversion of bytes to runes: one U+FFFD per ill-formed byte, not per maximal subpart.
func goRepair(texts [][]byte) []string {
	out := make([]string, len(texts))
	for i, text := range texts {
		out[i] = string([]rune(string(text)))
	}
	return out
}

func TestBytesTextsMeetDecodeError(t *testing.T) {
	d := dialGateway(t).Discriminative
	modes := []struct {
		name        string
		mode        discriminativev1.DecodeError
		with, other string // the repair of this mode, and of the other
	}{
		{"replace", discriminativev1.DecodeError_DECODE_ERROR_REPLACE, "\uFFFD", ""},
		{"ignore", discriminativev1.DecodeError_DECODE_ERROR_IGNORE, "", "\uFFFD"},
	}
	for _, char := range []bool{false, true} {
		for _, mode := range modes {
			analyzer := map[bool]string{false: "word", true: "char"}[char]
			t.Run(mode.name+"/"+analyzer, func(t *testing.T) {
				testBytesTexts(t, d, mode.name+"-"+analyzer, mode.mode, mode.with, mode.other, char)
			})
		}
	}
}

// testBytesTexts checks every *Bytes method under decode_error mode, whose repair replaces each maximal
// subpart of an ill-formed sequence with `with` (other: the other mode's).
func testBytesTexts(t *testing.T, d *maas.DiscriminativeClient, suffix string, mode discriminativev1.DecodeError,
	with, other string, char bool) {
	byBytes, byStrings := "go-bytes-"+suffix, "go-strings-"+suffix
	defer deleteModels(t, d, byBytes, byStrings)

	// Training on the bytes equals training on the repaired strings.
	trainedBytes, err := d.TrainBytes(testContext(t), decodeErrorConfig(byBytes, mode, char), maas.BytesBatches(latin1Corpus, 3))
	if err != nil {
		t.Fatal(err)
	}
	trainedStrings, err := d.Train(testContext(t), decodeErrorConfig(byStrings, mode, char),
		maas.Batches(repairExamples(latin1Corpus, with), 3))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(trainedBytes.GetSummary(), trainedStrings.GetSummary()) {
		t.Fatalf("TrainBytes summary %v, Train on the repaired strings %v", trainedBytes.GetSummary(), trainedStrings.GetSummary())
	}
	gotBytes := getModel(t, d, byBytes)
	gotStrings := getModel(t, d, byStrings)
	if !proto.Equal(gotBytes.GetSpec(), gotStrings.GetSpec()) || !proto.Equal(gotBytes.GetTrainSummary(), gotStrings.GetTrainSummary()) {
		t.Fatalf("TrainBytes stored %v\nTrain on the repaired strings %v", gotBytes.GetSpec(), gotStrings.GetSpec())
	}
	otherModel, err := d.Train(testContext(t), decodeErrorConfig("go-strings-other", mode, char),
		maas.Batches(repairExamples(latin1Corpus, other), 3))
	if err != nil {
		t.Fatal(err)
	}
	deleteModels(t, d, "go-strings-other")
	if otherModel.GetSummary().GetNumFeatures() == trainedStrings.GetSummary().GetNumFeatures() {
		t.Fatalf("the other repair gives the same %d features: the comparison above shows little", otherModel.GetSummary().GetNumFeatures())
	}

	// Classify: the bytes answer as the repaired strings (and not as the other repair).
	request := func() *discriminativev1.ClassifyRequest {
		return &discriminativev1.ClassifyRequest{Model: maas.Ref(byBytes, 0), Explain: true}
	}
	got, err := d.ClassifyBytes(testContext(t), request(), latin1Queries)
	if err != nil {
		t.Fatal(err)
	}
	wantReq := request()
	wantReq.Texts = repairAll(latin1Queries, with)
	want, err := d.Classify(testContext(t), wantReq)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("ClassifyBytes %v\nClassify on the repaired strings %v", got, want)
	}
	otherReq := request()
	otherReq.Texts = repairAll(latin1Queries, other)
	otherResp, err := d.Classify(testContext(t), otherReq)
	if err != nil {
		t.Fatal(err)
	}
	if proto.Equal(otherResp, want) {
		t.Fatal("the other repair classifies the same: the comparison above shows little")
	}
	if char && with != "" {
		goReq := request()
		goReq.Texts = goRepair(latin1Queries)
		if goResp, err := d.Classify(testContext(t), goReq); err != nil || proto.Equal(goResp, want) {
			t.Fatalf("Go's repair (one U+FFFD per byte) classifies the same (%v): the comparison above would not see a client that repairs", err)
		}
	}
	// req.Texts come first, then the texts given as bytes.
	mixed := request()
	mixed.Texts = wantReq.Texts[:2]
	if got, err := d.ClassifyBytes(testContext(t), mixed, latin1Queries[2:]); err != nil || !proto.Equal(got, want) {
		t.Fatalf("ClassifyBytes with two texts in the request: %v (%v)\nwant %v", got, err, want)
	}

	// ClassifyStream: one response per request, each as Classify's.
	pairs := func(yield func(*discriminativev1.ClassifyRequest, [][]byte) bool) {
		for i := range latin1Queries {
			if !yield(request(), latin1Queries[i:i+1]) {
				return
			}
		}
	}
	n := 0
	for resp, err := range d.ClassifyStreamBytes(testContext(t), pairs) {
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetResults()) != 1 || !proto.Equal(resp.GetResults()[0], want.GetResults()[n]) {
			t.Fatalf("stream response %d: %v, want %v", n, resp, want.GetResults()[n])
		}
		n++
	}
	if n != len(latin1Queries) {
		t.Fatalf("%d stream responses for %d requests", n, len(latin1Queries))
	}

	// Vectorize.
	vecBytes, err := d.VectorizeBytes(testContext(t), &discriminativev1.VectorizeRequest{
		Model: maas.Ref(byBytes, 0), IncludeFeatureNames: true}, latin1Queries)
	if err != nil {
		t.Fatal(err)
	}
	vecStrings, err := d.Vectorize(testContext(t), &discriminativev1.VectorizeRequest{
		Model: maas.Ref(byBytes, 0), IncludeFeatureNames: true, Texts: repairAll(latin1Queries, with)})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(vecBytes, vecStrings) {
		t.Fatalf("VectorizeBytes %v\nVectorize on the repaired strings %v", vecBytes, vecStrings)
	}

	// Evaluate.
	evalBytes, err := d.EvaluateBytes(testContext(t), &discriminativev1.EvaluateConfig{Model: maas.Ref(byBytes, 0)},
		maas.BytesBatches(latin1Corpus, 4))
	if err != nil {
		t.Fatal(err)
	}
	evalStrings, err := d.Evaluate(testContext(t), &discriminativev1.EvaluateConfig{Model: maas.Ref(byBytes, 0)},
		maas.Batches(repairExamples(latin1Corpus, with), 4))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(evalBytes, evalStrings) {
		t.Fatalf("EvaluateBytes %v\nEvaluate on the repaired strings %v", evalBytes, evalStrings)
	}
}

func TestBytesTextsUnderStrict(t *testing.T) {
	d := dialGateway(t).Discriminative
	const name = "go-bytes-strict"
	if _, err := d.Train(testContext(t), &discriminativev1.TrainConfig{Name: name}, maas.Batches(corpus, 5)); err != nil {
		t.Fatal(err)
	}
	defer deleteModels(t, d, name)

	// UTF-8 bytes answer exactly as the strings they spell.
	utf8Texts := append(queries[:len(queries):len(queries)], "naïve café ☕")
	asBytes := make([][]byte, len(utf8Texts))
	for i, q := range utf8Texts {
		asBytes[i] = []byte(q)
	}
	got, err := d.ClassifyBytes(testContext(t), &discriminativev1.ClassifyRequest{Model: maas.Ref(name, 0), TopK: 2}, asBytes)
	if err != nil {
		t.Fatal(err)
	}
	want, err := d.Classify(testContext(t), &discriminativev1.ClassifyRequest{Model: maas.Ref(name, 0), TopK: 2, Texts: utf8Texts})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("ClassifyBytes of UTF-8 %v\nClassify %v", got, want)
	}

	// A text that is not UTF-8 is refused naming it and the offset of its first ill-formed sequence.
	texts := [][]byte{[]byte("the match"), []byte("bread"), []byte("late goal, caf\xe9 au lait")}
	mentions := []string{"texts[2]", fmt.Sprintf("byte offset %d", firstInvalid(texts[2]))}
	_, err = d.ClassifyBytes(testContext(t), &discriminativev1.ClassifyRequest{Model: maas.Ref(name, 0)}, texts)
	wantCode(t, err, codes.InvalidArgument, mentions...)
	_, err = d.VectorizeBytes(testContext(t), &discriminativev1.VectorizeRequest{Model: maas.Ref(name, 0)}, texts)
	wantCode(t, err, codes.InvalidArgument, mentions...)
	examples := []maas.LabeledBytes{{Text: texts[0], Label: "sports"}, {Text: texts[1], Label: "food"}, {Text: texts[2], Label: "sports"}}
	// Evaluate names the example by its place in the stream (the first of the second batch here).
	_, err = d.EvaluateBytes(testContext(t), &discriminativev1.EvaluateConfig{Model: maas.Ref(name, 0)}, maas.BytesBatches(examples, 2))
	wantCode(t, err, codes.InvalidArgument, "example 2: ", mentions[1])
	// Train names the example by batch and by its place in the stream.
	_, err = d.TrainBytes(testContext(t), &discriminativev1.TrainConfig{Name: "go-bytes-strict-train"}, maas.BytesBatches(examples, 2))
	wantCode(t, err, codes.InvalidArgument, "example 2 of the stream", mentions[1])
	_, err = d.GetModel(testContext(t), &discriminativev1.GetModelRequest{Model: maas.Ref("go-bytes-strict-train", 0)})
	wantCode(t, err, codes.NotFound)

	// Every other field is marshalled as by the ordinary methods: a label that is not UTF-8 fails the call in the
	// client alike (INVALID_ARGUMENT naming it, before anything is sent), and a nil request is the empty one.
	badLabel := []maas.LabeledBytes{{Text: []byte("bread"), Label: "caf\xe9"}}
	_, errBytes := d.TrainBytes(testContext(t), &discriminativev1.TrainConfig{Name: "go-bytes-bad-label"}, maas.BytesBatches(badLabel, 1))
	_, err = d.Train(testContext(t), &discriminativev1.TrainConfig{Name: "go-bytes-bad-label"},
		maas.Batches(repairExamples(badLabel, ""), 1)) // the label is kept as it is
	if wantCode(t, err, codes.InvalidArgument, "batches[0].examples[0].label: invalid UTF-8 at byte 3"); errBytes == nil || errBytes.Error() != err.Error() {
		t.Fatalf("TrainBytes with a label that is not UTF-8: %v; Train: %v", errBytes, err)
	}
	_, errBytes = d.ClassifyBytes(testContext(t), nil, texts[:1])
	_, err = d.Classify(testContext(t), &discriminativev1.ClassifyRequest{Texts: []string{string(texts[0])}})
	if wantCode(t, err, codes.InvalidArgument); errBytes == nil || errBytes.Error() != err.Error() {
		t.Fatalf("ClassifyBytes with a nil request: %v; Classify without a model: %v", errBytes, err)
	}
}

func getModel(t *testing.T, d *maas.DiscriminativeClient, name string) *discriminativev1.GetModelResponse {
	t.Helper()
	got, err := d.GetModel(testContext(t), &discriminativev1.GetModelRequest{Model: maas.Ref(name, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func deleteModels(t *testing.T, d *maas.DiscriminativeClient, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := d.DeleteModel(testContext(t), &commonv1.DeleteModelRequest{Name: name}); err != nil && maas.Code(err) != codes.NotFound {
			t.Error(err)
		}
	}
}
