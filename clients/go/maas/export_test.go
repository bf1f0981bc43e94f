package maas

import (
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// The encoders of the *Bytes methods, for the tests in package maas_test.

// MarshalTexts is what ClassifyBytes and VectorizeBytes send.
func MarshalTexts(req proto.Message, texts [][]byte) ([]byte, error) { return marshalTexts(req, texts) }

// MarshalTrainBatch is a TrainRequest batch as TrainBytes sends it.
func MarshalTrainBatch(examples []LabeledBytes) ([]byte, error) {
	return marshalBatch(trainBatchField, examples)
}

// MarshalEvaluateBatch is an EvaluateRequest batch as EvaluateBytes sends it.
func MarshalEvaluateBatch(examples []LabeledBytes) ([]byte, error) {
	return marshalBatch(evaluateBatchField, examples)
}

// SetMaxPackedText sets the largest text PackTexts packs (math.MaxUint32: what a 4-byte length holds), so a
// test can reach the limit without a 4 GiB text, and returns the previous limit.
func SetMaxPackedText(n uint64) (previous uint64) {
	previous, maxPackedText = maxPackedText, n
	return previous
}

// ConnectParams is the reconnect backoff Dial gives the channel with these options.
func ConnectParams(opts ...Option) (grpc.ConnectParams, error) {
	s, err := newSettings(opts)
	if err != nil {
		return grpc.ConnectParams{}, err
	}
	return s.connectParams(), nil
}
