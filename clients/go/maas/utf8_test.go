package maas_test

import (
	"iter"
	"testing"

	"google.golang.org/grpc/codes"

	commonv1 "github.com/maas-project/maas/clients/go/gen/maas/common/v1"
	discriminativev1 "github.com/maas-project/maas/clients/go/gen/maas/discriminative/v1"
	generativev1 "github.com/maas-project/maas/clients/go/gen/maas/generative/v1"
	"github.com/maas-project/maas/clients/go/maas"
)

// notUTF8 is "sport" followed by a lone surrogate (U+D800) as WTF-8 writes it: no UTF-8 string holds those bytes.
const notUTF8 = "sport\xed\xa0\x80"

// A string field that is not UTF-8 (a label, a name, a description) failed the call with INTERNAL "grpc: error while
// marshaling: string field contains invalid UTF-8": a code that means a server bug, and no field named. The client
// now refuses it before sending, with INVALID_ARGUMENT naming the field, its index and the byte, in every kind of
// call; nothing is stored.
func TestStringFieldsThatAreNotUTF8AreInvalidArgumentNamingTheField(t *testing.T) {
	c := dialGateway(t)
	d, g := c.Discriminative, c.Generative
	good := []*discriminativev1.LabeledText{{Text: "a late goal", Label: "sports"}, {Text: "fresh bread", Label: "food"}}
	bad := []*discriminativev1.LabeledText{{Text: "a goal", Label: "sports"}, {Text: "bread", Label: notUTF8}}
	batches := func(b ...[]*discriminativev1.LabeledText) iter.Seq[*discriminativev1.TextBatch] {
		return func(yield func(*discriminativev1.TextBatch) bool) {
			for _, examples := range b {
				if !yield(&discriminativev1.TextBatch{Examples: examples}) {
					return
				}
			}
		}
	}
	config := &discriminativev1.TrainConfig{Name: "go-utf8"}
	checks := []struct {
		rpc, field string
		call       func() error
	}{
		{"DiscriminativeService.Train", "batches[1].examples[1].label: invalid UTF-8 at byte 5", func() error {
			_, err := d.Train(testContext(t), config, batches(good, bad))
			return err
		}},
		{"DiscriminativeService.Train", `config.labels["team"]: invalid UTF-8 at byte 5`, func() error {
			_, err := d.Train(testContext(t), &discriminativev1.TrainConfig{Name: "go-utf8",
				Labels: map[string]string{"owner": "me", "team": notUTF8}}, batches(good))
			return err
		}},
		{"DiscriminativeService.Train", "config.name: invalid UTF-8 at byte 5", func() error {
			_, err := d.Train(testContext(t), &discriminativev1.TrainConfig{Name: notUTF8}, batches(good))
			return err
		}},
		{"DiscriminativeService.Train", "batches[0].examples[1].label: invalid UTF-8 at byte 5", func() error {
			_, err := d.TrainBytes(testContext(t), config, maas.BytesBatches([]maas.LabeledBytes{
				{Text: []byte("a goal"), Label: "sports"}, {Text: []byte("bread"), Label: notUTF8}}, 10))
			return err
		}},
		{"DiscriminativeService.Evaluate", "batches[0].examples[1].label: invalid UTF-8 at byte 5", func() error {
			_, err := d.Evaluate(testContext(t), &discriminativev1.EvaluateConfig{Model: maas.Ref("go-utf8", 0)},
				batches(bad))
			return err
		}},
		{"DiscriminativeService.Classify", "texts[1]: invalid UTF-8 at byte 5", func() error {
			_, err := d.Classify(testContext(t), &discriminativev1.ClassifyRequest{Model: maas.Ref("go-utf8", 0),
				Texts: []string{"a goal", notUTF8}})
			return err
		}},
		{"DiscriminativeService.Classify", "model.name: invalid UTF-8 at byte 5", func() error {
			_, err := d.ClassifyBytes(testContext(t), &discriminativev1.ClassifyRequest{Model: maas.Ref(notUTF8, 0)},
				[][]byte{[]byte("a goal")})
			return err
		}},
		{"DiscriminativeService.ClassifyStream", "requests[1].model.name: invalid UTF-8 at byte 5", func() error {
			requests := func(yield func(*discriminativev1.ClassifyRequest) bool) {
				_ = yield(&discriminativev1.ClassifyRequest{Model: maas.Ref("go-utf8", 0), Texts: []string{"a"}}) &&
					yield(&discriminativev1.ClassifyRequest{Model: maas.Ref(notUTF8, 0), Texts: []string{"a"}})
			}
			for _, err := range d.ClassifyStream(testContext(t), requests) {
				if err != nil {
					return err
				}
			}
			return nil
		}},
		{"DiscriminativeService.GetModel", "model.name: invalid UTF-8 at byte 5", func() error {
			_, err := d.GetModel(testContext(t), &discriminativev1.GetModelRequest{Model: maas.Ref(notUTF8, 0)})
			return err
		}},
		{"GenerativeService.ListModels", "name_prefix: invalid UTF-8 at byte 5", func() error {
			_, err := g.ListAllModels(testContext(t), &commonv1.ListModelsRequest{NamePrefix: notUTF8})
			return err
		}},
		{"GenerativeService.CreateModel", "description: invalid UTF-8 at byte 5", func() error {
			_, err := g.CreateModel(testContext(t), &generativev1.CreateModelRequest{Name: "go-utf8",
				Description: notUTF8, Spec: uniformSpec([]float64{0}, []float64{1})})
			return err
		}},
		{"GenerativeService.Sample", "model.name: invalid UTF-8 at byte 5", func() error {
			for _, err := range g.Sample(testContext(t), &generativev1.SampleRequest{Model: maas.Ref(notUTF8, 0),
				NumSamples: 1}) {
				if err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for _, check := range checks {
		e := wantCode(t, check.call(), codes.InvalidArgument, check.field)
		if e.RPC != check.rpc {
			t.Errorf("%s: RPC %q, want %q", check.field, e.RPC, check.rpc)
		}
	}
	// Nothing was stored.
	_, err := d.GetModel(testContext(t), &discriminativev1.GetModelRequest{Model: maas.Ref("go-utf8", 0)})
	wantCode(t, err, codes.NotFound)
	_, err = g.GetModel(testContext(t), &generativev1.GetModelRequest{Model: maas.Ref("go-utf8", 0)})
	wantCode(t, err, codes.NotFound)
}
