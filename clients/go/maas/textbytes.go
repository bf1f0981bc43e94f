package maas

// Texts as bytes. The discriminative service reads every text field as bytes and applies the model's
// decode_error (scikit-learn's: strict, replace, ignore) to bytes that are not UTF-8, but protobuf-go refuses to
// marshal a string field that is not UTF-8. The *Bytes methods therefore write the text fields themselves
// (protowire) around proto.Marshal of everything else, where proto.Marshal would put them (fields in number
// order), and send the result through a per-call codec that passes it on as it is. For UTF-8 texts the bytes sent
// are exactly proto.Marshal's of the ordinary request.

import (
	"context"
	"fmt"
	"iter"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	discriminativev1 "github.com/maas-project/maas/clients/go/gen/maas/discriminative/v1"
)

// LabeledBytes is a labelled text given as bytes: discriminativev1.LabeledText with Text as []byte, for
// TrainBytes and EvaluateBytes.
type LabeledBytes struct {
	// The text. Bytes that are not UTF-8 meet the model's decode_error.
	Text []byte
	// Class label, non-empty UTF-8.
	Label string
	// Sample weight >= 0 (proto.Float64(w)); nil: 1.0.
	Weight *float64
}

// BytesBatches yields examples in batches of at most perBatch examples (for TrainBytes and EvaluateBytes);
// perBatch < 1 means 1.
func BytesBatches(examples []LabeledBytes, perBatch int) iter.Seq[[]LabeledBytes] {
	perBatch = max(perBatch, 1)
	return func(yield func([]LabeledBytes) bool) {
		for start := 0; start < len(examples); start += perBatch {
			if !yield(examples[start:min(start+perBatch, len(examples))]) {
				return
			}
		}
	}
}

// ClassifyBytes is Classify with the texts given as bytes: it classifies req.Texts (usually empty) followed by
// texts (a nil req: no other field set). A text that is not UTF-8 meets the model's decode_error: strict answers INVALID_ARGUMENT naming the text
// (texts[i]) and the byte offset; replace and ignore repair it as scikit-learn does. UTF-8 texts answer exactly as
// with Classify.
func (d *DiscriminativeClient) ClassifyBytes(ctx context.Context, req *discriminativev1.ClassifyRequest,
	texts [][]byte) (*discriminativev1.ClassifyResponse, error) {
	if req == nil {
		req = &discriminativev1.ClassifyRequest{}
	}
	return unary(d.caller, ctx, "DiscriminativeService.Classify", textsRequest(req, texts),
		invokeBytes[discriminativev1.ClassifyResponse](d.conn, discriminativev1.DiscriminativeService_Classify_FullMethodName))
}

// ClassifyStreamBytes is ClassifyStream with each request's texts given as bytes: each pair of requests is a
// request and the texts sent after its own (see ClassifyBytes); the responses come as ClassifyStream's.
func (d *DiscriminativeClient) ClassifyStreamBytes(ctx context.Context,
	requests iter.Seq2[*discriminativev1.ClassifyRequest, [][]byte]) iter.Seq2[*discriminativev1.ClassifyResponse, error] {
	var wire iter.Seq[*wireRequest]
	if requests != nil {
		wire = func(yield func(*wireRequest) bool) {
			for req, texts := range requests {
				if req == nil {
					req = &discriminativev1.ClassifyRequest{}
				}
				if !yield(textsRequest(req, texts)) {
					return
				}
			}
		}
	}
	return bidiStream(ctx, "DiscriminativeService.ClassifyStream", wire,
		openBidiStream[discriminativev1.ClassifyResponse](d.conn, "ClassifyStream", discriminativev1.DiscriminativeService_ClassifyStream_FullMethodName))
}

// VectorizeBytes is Vectorize with the texts given as bytes: the rows of req.Texts (usually empty) followed by
// texts (see ClassifyBytes).
func (d *DiscriminativeClient) VectorizeBytes(ctx context.Context, req *discriminativev1.VectorizeRequest,
	texts [][]byte) (*discriminativev1.VectorizeResponse, error) {
	if req == nil {
		req = &discriminativev1.VectorizeRequest{}
	}
	return unary(d.caller, ctx, "DiscriminativeService.Vectorize", textsRequest(req, texts),
		invokeBytes[discriminativev1.VectorizeResponse](d.conn, discriminativev1.DiscriminativeService_Vectorize_FullMethodName))
}

// TrainBytes is Train with the texts given as bytes (see BytesBatches): a text that is not UTF-8 meets the
// decode_error of config's vectorizer (strict: INVALID_ARGUMENT naming the text, nothing stored).
func (d *DiscriminativeClient) TrainBytes(ctx context.Context, config *discriminativev1.TrainConfig,
	batches iter.Seq[[]LabeledBytes]) (*discriminativev1.TrainResponse, error) {
	first := messageRequest(&discriminativev1.TrainRequest{Message: &discriminativev1.TrainRequest_Config{Config: config}})
	rest := mapSeq(batches, func(b []LabeledBytes) *wireRequest { return batchRequest(trainBatchField, b) })
	return clientStream(d.caller, ctx, "DiscriminativeService.Train",
		openClientStream[discriminativev1.TrainResponse](d.conn, "Train", discriminativev1.DiscriminativeService_Train_FullMethodName),
		first, rest, checkBytesBatch)
}

// EvaluateBytes is Evaluate with the texts given as bytes (see BytesBatches), under the model's decode_error.
func (d *DiscriminativeClient) EvaluateBytes(ctx context.Context, config *discriminativev1.EvaluateConfig,
	batches iter.Seq[[]LabeledBytes]) (*discriminativev1.EvaluateResponse, error) {
	first := messageRequest(&discriminativev1.EvaluateRequest{Message: &discriminativev1.EvaluateRequest_Config{Config: config}})
	rest := mapSeq(batches, func(b []LabeledBytes) *wireRequest { return batchRequest(evaluateBatchField, b) })
	return clientStream(d.caller, ctx, "DiscriminativeService.Evaluate",
		openClientStream[discriminativev1.EvaluateResponse](d.conn, "Evaluate", discriminativev1.DiscriminativeService_Evaluate_FullMethodName),
		first, rest, checkBytesBatch)
}

// checkBytesBatch refuses batches[i] of TrainBytes or EvaluateBytes when a label is not UTF-8 (see checkRequest),
// naming it as Train and Evaluate name a TextBatch's: batches[i].examples[j].label.
func checkBytesBatch(msg *wireRequest, i int) error {
	return checkRequest(msg, fmt.Sprintf("batches[%d].", i))
}

// ---------------------------------------------------------------------------------------------------------
// Encoding.

// The fields the texts travel in, found by name in the contract's descriptors.
var (
	trainBatchField    = fieldNamed(&discriminativev1.TrainRequest{}, "batch")
	evaluateBatchField = fieldNamed(&discriminativev1.EvaluateRequest{}, "batch")
	examplesField      = fieldNamed(&discriminativev1.TextBatch{}, "examples")
	exampleTextField   = fieldNamed(&discriminativev1.LabeledText{}, "text")
)

func fieldNamed(m proto.Message, name protoreflect.Name) protowire.Number {
	fields := m.ProtoReflect().Descriptor().Fields()
	fd := fields.ByName(name)
	if fd == nil || fd.Kind() != protoreflect.StringKind && fd.Kind() != protoreflect.MessageKind {
		panic(fmt.Sprintf("maas: %s has no string or message field %q", m.ProtoReflect().Descriptor().FullName(), name))
	}
	return fd.Number()
}

// marshalTexts is the wire form of req (a ClassifyRequest or VectorizeRequest) with req.Texts followed by texts
// as its `texts` field.
func marshalTexts(req proto.Message, texts [][]byte) ([]byte, error) {
	m := req.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("texts")
	if fd == nil || !fd.IsList() || fd.Kind() != protoreflect.StringKind {
		return nil, fmt.Errorf("maas: %s has no repeated string field texts", m.Descriptor().FullName())
	}
	size := proto.Size(req)
	for _, text := range texts {
		size += protowire.SizeTag(fd.Number()) + protowire.SizeBytes(len(text))
	}
	return marshalWith(make([]byte, 0, size), m, fd, func(b []byte) []byte {
		own := m.Get(fd).List()
		for i := 0; i < own.Len(); i++ {
			b = protowire.AppendTag(b, fd.Number(), protowire.BytesType)
			b = protowire.AppendString(b, own.Get(i).String())
		}
		for _, text := range texts {
			b = protowire.AppendTag(b, fd.Number(), protowire.BytesType)
			b = protowire.AppendBytes(b, text)
		}
		return b
	})
}

// marshalWith appends proto.Marshal(m) to b with field fd written by field instead of from m: where proto.Marshal
// writes it, after the fields of smaller numbers and before those of larger ones and the unknown fields.
func marshalWith(b []byte, m protoreflect.Message, fd protoreflect.FieldDescriptor,
	field func([]byte) []byte) ([]byte, error) {
	below, above := m.New(), m.New()
	m.Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case f.Number() < fd.Number():
			below.Set(f, v)
		case f.Number() > fd.Number():
			above.Set(f, v)
		}
		return true
	})
	above.SetUnknown(m.GetUnknown())
	b, err := proto.MarshalOptions{}.MarshalAppend(b, below.Interface())
	if err != nil {
		return nil, err
	}
	b = field(b)
	return proto.MarshalOptions{}.MarshalAppend(b, above.Interface())
}

// marshalBatch is the wire form of a TrainRequest or EvaluateRequest (batchField: the number of its `batch`)
// holding nothing but a TextBatch of examples (and the batch nothing but them). Each example is its text field,
// then proto.Marshal of a LabeledText with the rest: text is LabeledText's first field (checked by init), which
// proto.Marshal writes first. Sizes are computed first so the texts are copied once.
func marshalBatch(batchField protowire.Number, examples []LabeledBytes) ([]byte, error) {
	rest := make([]discriminativev1.LabeledText, len(examples))
	sizes := make([]int, len(examples))
	batchSize := 0
	for i, e := range examples {
		rest[i].Label, rest[i].Weight = e.Label, e.Weight
		sizes[i] = proto.Size(&rest[i])
		if len(e.Text) > 0 { // proto3: an empty text is not written
			sizes[i] += protowire.SizeTag(exampleTextField) + protowire.SizeBytes(len(e.Text))
		}
		batchSize += protowire.SizeTag(examplesField) + protowire.SizeBytes(sizes[i])
	}
	b := make([]byte, 0, protowire.SizeTag(batchField)+protowire.SizeBytes(batchSize))
	b = protowire.AppendTag(b, batchField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(batchSize))
	for i, e := range examples {
		b = protowire.AppendTag(b, examplesField, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizes[i]))
		if len(e.Text) > 0 {
			b = protowire.AppendTag(b, exampleTextField, protowire.BytesType)
			b = protowire.AppendBytes(b, e.Text)
		}
		var err error
		// The size was just computed (what grpc-go's codec does too).
		if b, err = (proto.MarshalOptions{UseCachedSize: true}).MarshalAppend(b, &rest[i]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func init() {
	fields := (&discriminativev1.LabeledText{}).ProtoReflect().Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		if fields.Get(i).Number() < exampleTextField {
			panic("maas: LabeledText.text is not its first field; marshalBatch writes it first")
		}
	}
}

// ---------------------------------------------------------------------------------------------------------
// Transport.

// wireRequest is a request message bytesCodec sends as marshal writes it. Marshalling happens when gRPC sends the
// message; check (see checkRequest), run before, says why it cannot be sent: a string field that is not UTF-8 (a
// label, say), which marshal would refuse, failing the call with INTERNAL. Its fields are named after prefix.
type wireRequest struct {
	marshal func() ([]byte, error)
	check   func(prefix string) error
}

func textsRequest(req proto.Message, texts [][]byte) *wireRequest {
	return &wireRequest{marshal: func() ([]byte, error) { return marshalTexts(req, texts) },
		check: func(prefix string) error {
			// req's own texts are written as bytes, as texts are (marshalTexts).
			m := req.ProtoReflect()
			return checkStrings(m, prefix, m.Descriptor().Fields().ByName("texts"))
		}}
}

func batchRequest(batchField protowire.Number, examples []LabeledBytes) *wireRequest {
	return &wireRequest{marshal: func() ([]byte, error) { return marshalBatch(batchField, examples) },
		check: func(prefix string) error {
			for i, e := range examples {
				if err := checkUTF8(e.Label, fmt.Sprintf("%sexamples[%d].label", prefix, i), false); err != nil {
					return err
				}
			}
			return nil
		}}
}

func messageRequest(m proto.Message) *wireRequest {
	return &wireRequest{marshal: func() ([]byte, error) { return proto.Marshal(m) },
		check: func(prefix string) error { return checkRequest(m, prefix) }}
}

// protoCodec is grpc-go's protobuf codec (what every other call uses).
var protoCodec = encoding.GetCodecV2(grpcproto.Name)

// bytesCodec sends a *wireRequest's bytes as they are and reads responses with the protobuf codec. Its name is
// the protobuf codec's, so the call's content-type is "application/grpc+proto" (the ordinary calls send
// "application/grpc", which gRPC defines as the same).
type bytesCodec struct{}

func (bytesCodec) Marshal(v any) (mem.BufferSlice, error) {
	r, ok := v.(*wireRequest)
	if !ok {
		return protoCodec.Marshal(v)
	}
	data, err := r.marshal()
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(data)}, nil
}

func (bytesCodec) Unmarshal(data mem.BufferSlice, v any) error { return protoCodec.Unmarshal(data, v) }

func (bytesCodec) Name() string { return protoCodec.Name() }

// invokeBytes is a unary call of method sending a *wireRequest.
func invokeBytes[Resp any](conn grpc.ClientConnInterface,
	method string) func(context.Context, *wireRequest, ...grpc.CallOption) (*Resp, error) {
	return func(ctx context.Context, req *wireRequest, opts ...grpc.CallOption) (*Resp, error) {
		resp := new(Resp)
		if err := conn.Invoke(ctx, method, req, resp, append(opts, grpc.ForceCodecV2(bytesCodec{}))...); err != nil {
			return nil, err
		}
		return resp, nil
	}
}

// openClientStream and openBidiStream open a stream of method (stream: its name in the service descriptor)
// that sends *wireRequests.
func openClientStream[Resp any](conn grpc.ClientConnInterface, stream, method string) func(context.Context,
	...grpc.CallOption) (grpc.ClientStreamingClient[wireRequest, Resp], error) {
	return func(ctx context.Context, opts ...grpc.CallOption) (grpc.ClientStreamingClient[wireRequest, Resp], error) {
		s, err := newBytesStream(ctx, conn, stream, method, opts)
		if err != nil {
			return nil, err
		}
		return &grpc.GenericClientStream[wireRequest, Resp]{ClientStream: s}, nil
	}
}

func openBidiStream[Resp any](conn grpc.ClientConnInterface, stream, method string) func(context.Context,
	...grpc.CallOption) (grpc.BidiStreamingClient[wireRequest, Resp], error) {
	return func(ctx context.Context, opts ...grpc.CallOption) (grpc.BidiStreamingClient[wireRequest, Resp], error) {
		s, err := newBytesStream(ctx, conn, stream, method, opts)
		if err != nil {
			return nil, err
		}
		return &grpc.GenericClientStream[wireRequest, Resp]{ClientStream: s}, nil
	}
}

func newBytesStream(ctx context.Context, conn grpc.ClientConnInterface, stream, method string,
	opts []grpc.CallOption) (grpc.ClientStream, error) {
	service := &discriminativev1.DiscriminativeService_ServiceDesc
	for i := range service.Streams {
		if desc := &service.Streams[i]; desc.StreamName == stream {
			return conn.NewStream(ctx, desc, method, append(opts, grpc.ForceCodecV2(bytesCodec{}))...)
		}
	}
	return nil, fmt.Errorf("maas: %s has no stream %s", service.ServiceName, stream)
}
