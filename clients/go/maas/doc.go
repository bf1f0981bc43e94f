// Package maas is a small, idiomatic Go client for the maas services: the generative service
// (maas.generative.v1), the discriminative service (maas.discriminative.v1) and the gateway (maas.gateway.v1),
// over one gRPC connection (usually to the gateway, which routes every call).
//
// Every RPC of the three services has a method of the same name. Requests and responses are the generated
// protobuf types (package gen/maas/.../v1), passed through unchanged, so a field that a server version adds is
// usable as soon as the code is regenerated, without a change here. What the wrapper adds:
//
//   - Deadlines: every call runs under its context. Unary and client-streaming calls whose context has no
//     deadline get the client's default timeout (WithTimeout; 30 s unless set). Server- and bidi-streaming calls
//     run under the context alone, since a stream may legitimately run for long.
//   - Streams as iterators: server streams are iter.Seq2[*Response, error] (range over them; breaking out of
//     the loop cancels the call), client streams take an iter.Seq of chunks, and the bidi ClassifyStream takes
//     an iter.Seq of requests and yields the responses. The client pulls a chunks or requests iterator on a
//     goroutine of its own, one message at a time (yield returns once the message is sent, or false when the call
//     has ended: the iterator should then return, which ends that goroutine). So the deadline and ctx end a
//     client-streaming call even while its iterator blocks (DEADLINE_EXCEEDED / CANCELLED at once). A panic of
//     the iterator cancels the call and is raised again, with its value, on the caller's goroutine: from the
//     FitModel, Train or Evaluate call, or from the loop ranging over ClassifyStream's responses (once the call
//     has returned, or that loop has ended, the call is over and a panic is dropped).
//   - Texts as bytes: ClassifyBytes, ClassifyStreamBytes, VectorizeBytes, TrainBytes and EvaluateBytes take the
//     texts as []byte (LabeledBytes for labelled ones, batched by BytesBatches), as scikit-learn's vectorizers
//     take bytes. A text that is not UTF-8 meets the model's decode_error (strict: INVALID_ARGUMENT naming
//     texts[i] and the byte offset; replace, ignore: repaired as scikit-learn does); the ordinary methods cannot
//     send one, since protobuf-go refuses to marshal a string field that is not UTF-8. For UTF-8 texts the
//     request is byte for byte the ordinary method's.
//   - Packed texts: PackTexts lays texts ([]string or [][]byte) out for ClassifyRequest.PackedTexts and
//     VectorizeRequest.PackedTexts (each text's length, 4 bytes little-endian, then its bytes), one bytes field
//     instead of one string field per text, for large batches; the answer is the same as with Texts.
//   - Complete listings: ListAllModels (one response) and ListModelsPages (an iterator of pages) follow
//     ListModels' page tokens, so a listing of any size arrives whole, in pages that each fit in a message;
//     ListModels is the single call.
//   - Errors: every failed call returns a *Error carrying the gRPC status code and message
//     (errors.As(err, &e), or maas.Code(err)); errors.Is(err, context.DeadlineExceeded) and
//     errors.Is(err, context.Canceled) hold for those codes. A request holding a string field that is not UTF-8
//     (a label, a name, a text) is INVALID_ARGUMENT before it is sent, naming the field by its path and the
//     offset of its first invalid byte ("batches[1].examples[0].label: invalid UTF-8 at byte 5 of 8 ...").
//   - Security: TLS (WithTLS), mutual TLS (WithClientCertificate), a bearer token sent as
//     "authorization: Bearer <token>" on every call (WithBearerToken, WithBearerTokenFile; printable ASCII, as
//     the header carries nothing else: Dial refuses another token without quoting it).
//
// Typical use:
//
//	client, err := maas.Dial("127.0.0.1:50051")
//	if err != nil { ... }
//	defer client.Close()
//	for batch, err := range client.Generative.Sample(ctx, &generativev1.SampleRequest{...}) { ... }
//
// The generated code is not committed: it is produced from proto/ by the build (see ../README.md), or by
// `go generate ./...` in clients/go (../generate.sh: protoc with the plugins that deploy/install-deps.sh installs).
package maas

//go:generate ../generate.sh
