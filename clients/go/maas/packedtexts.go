package maas

// Texts packed in one bytes field: ClassifyRequest.PackedTexts and VectorizeRequest.PackedTexts.

import (
	"encoding/binary"
	"fmt"
	"math"
)

// packedLengthBytes is the size of the length before each packed text.
const packedLengthBytes = 4

// maxPackedText is the largest text PackTexts packs: its length must fit the 4-byte prefix (a variable so that
// a test can lower it; see export_test.go).
var maxPackedText uint64 = math.MaxUint32

// PackTexts returns texts in the layout of ClassifyRequest.PackedTexts and VectorizeRequest.PackedTexts: each
// text as its byte length, 4 bytes little-endian, then its bytes (the layout of KServe's raw BYTES tensors).
// A batch client sets PackedTexts instead of Texts (not both): one bytes field is cheaper to marshal, send and
// read than one string field per text, and the answer is the same. Texts are []string or [][]byte; a string is
// sent as its bytes (UTF-8 expected), and bytes that are not UTF-8 meet the model's decode_error, as with
// ClassifyBytes. The only error is a text of 4 GiB or more, whose length does not fit.
//
//	packed, err := maas.PackTexts(texts)
//	if err != nil { ... }
//	resp, err := client.Discriminative.Classify(ctx, &discriminativev1.ClassifyRequest{
//		Model: maas.Ref("news", 0), PackedTexts: packed, Compact: true})
func PackTexts[T ~string | ~[]byte](texts []T) ([]byte, error) {
	size := 0
	for i, text := range texts {
		if uint64(len(text)) > maxPackedText {
			return nil, fmt.Errorf("maas: PackTexts: texts[%d] has %d bytes, more than the %d that packed_texts' "+
				"4-byte length can hold", i, len(text), maxPackedText)
		}
		size += packedLengthBytes + len(text)
	}
	packed := make([]byte, 0, size)
	for _, text := range texts {
		packed = binary.LittleEndian.AppendUint32(packed, uint32(len(text)))
		packed = append(packed, text...)
	}
	return packed, nil
}
