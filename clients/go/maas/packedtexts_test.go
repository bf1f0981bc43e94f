package maas_test

// PackTexts: the layout written out by hand, and against the real server (directly and through the gateway):
// Classify and Vectorize with PackedTexts answer exactly as with Texts; a cut buffer is INVALID_ARGUMENT.

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	discriminativev1 "github.com/maas-project/maas/clients/go/gen/maas/discriminative/v1"
	"github.com/maas-project/maas/clients/go/maas"
)

func mustPack[T ~string | ~[]byte](t *testing.T, texts []T) []byte {
	t.Helper()
	packed, err := maas.PackTexts(texts)
	if err != nil {
		t.Fatalf("PackTexts(%q): %v", texts, err)
	}
	return packed
}

func TestPackTextsLayout(t *testing.T) {
	cases := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"strings", mustPack(t, []string{"ab", "", "é☕"}), []byte{
			0x02, 0x00, 0x00, 0x00, 'a', 'b',
			0x00, 0x00, 0x00, 0x00,
			0x05, 0x00, 0x00, 0x00, 0xc3, 0xa9, 0xe2, 0x98, 0x95, // é is 2 bytes of UTF-8, ☕ 3
		}},
		// Bytes as they are, not UTF-8 ones and a nil text included.
		{"bytes", mustPack(t, [][]byte{[]byte("caf\xe9"), nil, {0x00}}), []byte{
			0x04, 0x00, 0x00, 0x00, 'c', 'a', 'f', 0xe9,
			0x00, 0x00, 0x00, 0x00,
			0x01, 0x00, 0x00, 0x00, 0x00,
		}},
		// A length of 0x010203 bytes: the low byte first.
		{"long", mustPack(t, []string{strings.Repeat("x", 0x010203)})[:6], []byte{0x03, 0x02, 0x01, 0x00, 'x', 'x'}},
		{"none", mustPack(t, []string{}), []byte{}},
	}
	for _, c := range cases {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s: PackTexts gives\n%x\nwant\n%x", c.name, c.got, c.want)
		}
	}
	if long := mustPack(t, []string{strings.Repeat("x", 0x010203)}); len(long) != 4+0x010203 {
		t.Errorf("a text of %d bytes packs into %d bytes", 0x010203, len(long))
	}

	// A text whose length does not fit 4 bytes (4 GiB or more) is an error naming it; the limit is lowered here
	// rather than packing 4 GiB.
	previous := maas.SetMaxPackedText(3)
	defer maas.SetMaxPackedText(previous)
	if previous != math.MaxUint32 {
		t.Fatalf("PackTexts' limit is %d bytes, want %d (what 4 bytes hold)", previous, uint64(math.MaxUint32))
	}
	if packed, err := maas.PackTexts([]string{"abc", "abcd"}); err == nil || !strings.Contains(err.Error(), "texts[1]") {
		t.Fatalf("PackTexts of a text above the limit: %x, %v; want an error naming texts[1]", packed, err)
	}
	if _, err := maas.PackTexts([][]byte{[]byte("abc")}); err != nil {
		t.Fatalf("PackTexts of a text at the limit: %v", err)
	}
}

func TestPackedTextsAnswerAsTexts(t *testing.T) {
	const name = "go-packed"
	gw := dialGateway(t).Discriminative
	if _, err := gw.Train(testContext(t), &discriminativev1.TrainConfig{Name: name}, maas.Batches(corpus, 5)); err != nil {
		t.Fatal(err)
	}
	defer deleteModels(t, gw, name)
	texts := append(slices.Clone(queries), "", "naïve café ☕ 日本 bread")
	packed := mustPack(t, texts)
	model := maas.Ref(name, 0)

	for _, via := range []struct{ name, address string }{
		{"direct", liveStack.discriminative.address()},
		{"gateway", liveStack.gateway.address()},
	} {
		t.Run(via.name, func(t *testing.T) {
			d := dial(t, via.address).Discriminative
			for _, compact := range []bool{false, true} {
				want, err := d.Classify(testContext(t), &discriminativev1.ClassifyRequest{Model: model, Texts: texts, Compact: compact})
				if err != nil {
					t.Fatal(err)
				}
				got, err := d.Classify(testContext(t), &discriminativev1.ClassifyRequest{Model: model, PackedTexts: packed, Compact: compact})
				if err != nil {
					t.Fatal(err)
				}
				if n := max(len(got.GetResults()), len(got.GetPredicted())); n != len(texts) || !proto.Equal(got, want) {
					t.Fatalf("compact %v: Classify with PackedTexts (%d answers)\n%v\nwith Texts\n%v", compact, n, got, want)
				}
			}
			want, err := d.Vectorize(testContext(t), &discriminativev1.VectorizeRequest{Model: model, Texts: texts, IncludeFeatureNames: true})
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Vectorize(testContext(t), &discriminativev1.VectorizeRequest{Model: model, PackedTexts: packed, IncludeFeatureNames: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.GetRows()) != len(texts) || !proto.Equal(got, want) {
				t.Fatalf("Vectorize with PackedTexts\n%v\nwith Texts\n%v", got, want)
			}

			// The last text one byte short; a length itself cut short; both forms at once.
			_, err = d.Classify(testContext(t), &discriminativev1.ClassifyRequest{Model: model, PackedTexts: packed[:len(packed)-1]})
			wantCode(t, err, codes.InvalidArgument, fmt.Sprintf("packed_texts: text %d at byte", len(texts)-1))
			_, err = d.Vectorize(testContext(t), &discriminativev1.VectorizeRequest{Model: model, PackedTexts: packed[:len(packed)-1]})
			wantCode(t, err, codes.InvalidArgument, "packed_texts")
			_, err = d.Classify(testContext(t), &discriminativev1.ClassifyRequest{Model: model, PackedTexts: append(slices.Clone(packed), 7, 0)})
			wantCode(t, err, codes.InvalidArgument, fmt.Sprintf("text %d", len(texts)), "cut short")
			_, err = d.Classify(testContext(t), &discriminativev1.ClassifyRequest{Model: model, Texts: texts[:1], PackedTexts: packed})
			wantCode(t, err, codes.InvalidArgument, "both texts")
			// Packed bytes that are not UTF-8 meet the model's decode_error (strict: named as in texts).
			notUTF8 := mustPack(t, [][]byte{[]byte("bread"), []byte("caf\xe9 au lait")})
			_, err = d.Classify(testContext(t), &discriminativev1.ClassifyRequest{Model: model, PackedTexts: notUTF8})
			wantCode(t, err, codes.InvalidArgument, "texts[1]", "byte offset 3")
		})
	}
}
