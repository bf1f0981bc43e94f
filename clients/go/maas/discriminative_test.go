package maas_test

import (
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/maas-project/maas/clients/go/gen/maas/common/v1"
	discriminativev1 "github.com/maas-project/maas/clients/go/gen/maas/discriminative/v1"
	"github.com/maas-project/maas/clients/go/maas"
)

// corpus: ASCII texts, so scikit-learn's default analyzer (lowercase, tokens r"(?u)\b\w\w+\b") is the Go regexp
// below and the oracle can be computed here in closed form.
var corpus = []*discriminativev1.LabeledText{
	{Text: "The striker scored a late goal", Label: "sports"},
	{Text: "the keeper saved a penalty in the final minute", Label: "sports"},
	{Text: "A great match: two goals and a red card", Label: "sports"},
	{Text: "the coach praised the team after the match", Label: "sports"},
	{Text: "new processor doubles the memory bandwidth", Label: "tech"},
	{Text: "the phone ships with a faster chip and more memory", Label: "tech"},
	{Text: "an update fixes the kernel bug in the driver", Label: "tech"},
	{Text: "the laptop battery lasts a whole day", Label: "tech"},
	{Text: "knead the bread dough and let it rise", Label: "food"},
	{Text: "slow cooked beans with garlic and bread", Label: "food"},
	{Text: "the soup needs more salt and a little garlic", Label: "food"},
	{Text: "bake the dough for twenty minutes", Label: "food"},
	{Text: "I bought a phone after the match, and bread", Label: "tech"},
}

var tokenRE = regexp.MustCompile(`\b\w\w+\b`)

func tokens(text string) []string { return tokenRE.FindAllString(strings.ToLower(text), -1) }

// nbOracle is CountVectorizer() + MultinomialNB(alpha=1) fitted in closed form (scikit-learn's definitions).
type nbOracle struct {
	vocabulary     []string
	index          map[string]int
	classes        []string
	classLogPrior  []float64
	featureLogProb [][]float64
}

func fitOracle(examples []*discriminativev1.LabeledText) *nbOracle {
	o := &nbOracle{index: map[string]int{}}
	seen := map[string]bool{}
	for _, e := range examples {
		for _, tok := range tokens(e.GetText()) {
			seen[tok] = true
		}
		if !slices.Contains(o.classes, e.GetLabel()) {
			o.classes = append(o.classes, e.GetLabel())
		}
	}
	for tok := range seen {
		o.vocabulary = append(o.vocabulary, tok)
	}
	sort.Strings(o.vocabulary) // Python sorts str by code point: the same order for ASCII
	for i, tok := range o.vocabulary {
		o.index[tok] = i
	}
	sort.Strings(o.classes)
	classCount := make([]float64, len(o.classes))
	featureCount := make([][]float64, len(o.classes))
	for c := range featureCount {
		featureCount[c] = make([]float64, len(o.vocabulary))
	}
	for _, e := range examples {
		c := slices.Index(o.classes, e.GetLabel())
		classCount[c]++
		for f, n := range o.counts(e.GetText()) {
			featureCount[c][f] += n
		}
	}
	for c := range o.classes {
		o.classLogPrior = append(o.classLogPrior, math.Log(classCount[c]/float64(len(examples))))
		total := 0.0
		for _, v := range featureCount[c] {
			total += v
		}
		row := make([]float64, len(o.vocabulary))
		for f, v := range featureCount[c] {
			row[f] = math.Log(v+1) - math.Log(total+float64(len(o.vocabulary)))
		}
		o.featureLogProb = append(o.featureLogProb, row)
	}
	return o
}

// counts is the text's CountVectorizer row: feature index -> count (unknown tokens dropped).
func (o *nbOracle) counts(text string) map[int]float64 {
	row := map[int]float64{}
	for _, tok := range tokens(text) {
		if f, ok := o.index[tok]; ok {
			row[f]++
		}
	}
	return row
}

// logProba is predict_log_proba; predict is the first class of largest joint log-likelihood.
func (o *nbOracle) logProba(text string) (label string, logProb []float64) {
	jll := slices.Clone(o.classLogPrior)
	for f, n := range o.counts(text) {
		for c := range jll {
			jll[c] += n * o.featureLogProb[c][f]
		}
	}
	best := 0
	for c := range jll {
		if jll[c] > jll[best] {
			best = c
		}
	}
	m := slices.Max(jll)
	sum := 0.0
	for _, v := range jll {
		sum += math.Exp(v - m)
	}
	for _, v := range jll {
		logProb = append(logProb, v-m-math.Log(sum))
	}
	return o.classes[best], logProb
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*max(1, math.Abs(b)) }

// checkClassification compares one served result (all classes, class order) with the oracle.
func checkClassification(t *testing.T, o *nbOracle, text string, got *discriminativev1.Classification) {
	t.Helper()
	label, logProb := o.logProba(text)
	if got.GetLabel() != label || len(got.GetScores()) != len(o.classes) {
		t.Fatalf("%q: label %q with %d scores, want %q with %d", text, got.GetLabel(), len(got.GetScores()), label, len(o.classes))
	}
	for c, s := range got.GetScores() {
		if s.GetLabel() != o.classes[c] || !near(s.GetLogProbability(), logProb[c]) || !near(s.GetProbability(), math.Exp(logProb[c])) {
			t.Fatalf("%q class %d: got %v, want %s log p=%v", text, c, s, o.classes[c], logProb[c])
		}
	}
}

var queries = []string{
	"the striker scored a late goal",
	"knead the bread dough",
	"a faster processor and more memory",
	"zebra unicorn", // no known token: the priors decide
	"Garlic BREAD, garlic soup!",
}

func TestDiscriminativeTrainClassifyVectorize(t *testing.T) {
	d := dialGateway(t).Discriminative
	oracle := fitOracle(corpus)
	trained, err := d.Train(testContext(t), &discriminativev1.TrainConfig{Name: "go-nb", Description: "Go client test"},
		maas.Batches(corpus, 5))
	if err != nil {
		t.Fatal(err)
	}
	summary := trained.GetSummary()
	if summary.GetNumDocuments() != uint64(len(corpus)) || !slices.Equal(summary.GetClasses(), oracle.classes) ||
		summary.GetNumFeatures() != uint64(len(oracle.vocabulary)) || trained.GetInfo().GetFamily() != "count+multinomial_nb" {
		t.Fatalf("Train = %v; want %d documents, classes %v, %d features", trained, len(corpus), oracle.classes, len(oracle.vocabulary))
	}

	resp, err := d.Classify(testContext(t), &discriminativev1.ClassifyRequest{Model: maas.Ref("go-nb", 0), Texts: queries})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetResults()) != len(queries) || resp.GetModelVersion() != 1 {
		t.Fatalf("Classify = %v", resp)
	}
	for i, q := range queries {
		checkClassification(t, oracle, q, resp.GetResults()[i])
	}
	// top_k: the k most probable classes, by probability.
	top, err := d.Classify(testContext(t), &discriminativev1.ClassifyRequest{Model: maas.Ref("go-nb", 0), Texts: queries[:1], TopK: 1})
	if err != nil {
		t.Fatal(err)
	}
	if s := top.GetResults()[0].GetScores(); len(s) != 1 || s[0].GetLabel() != "sports" {
		t.Fatalf("top_k=1 scores %v", s)
	}

	// ClassifyStream: one response per request, in order, equal to the unary answers.
	requests := func(yield func(*discriminativev1.ClassifyRequest) bool) {
		for _, q := range queries {
			if !yield(&discriminativev1.ClassifyRequest{Model: maas.Ref("go-nb", 0), Texts: []string{q, q}}) {
				return
			}
		}
	}
	n := 0
	for r, err := range d.ClassifyStream(testContext(t), requests) {
		if err != nil {
			t.Fatal(err)
		}
		if len(r.GetResults()) != 2 {
			t.Fatalf("stream response %d has %d results", n, len(r.GetResults()))
		}
		for _, result := range r.GetResults() {
			if !proto.Equal(result, resp.GetResults()[n]) {
				t.Fatalf("stream response %d: %v, unary %v", n, result, resp.GetResults()[n])
			}
		}
		n++
	}
	if n != len(queries) {
		t.Fatalf("%d stream responses for %d requests", n, len(queries))
	}
	// An error in the middle of the stream ends it with the server's status.
	bad := func(yield func(*discriminativev1.ClassifyRequest) bool) {
		_ = yield(&discriminativev1.ClassifyRequest{Model: maas.Ref("go-nb", 0), Texts: queries[:1]}) &&
			yield(&discriminativev1.ClassifyRequest{Model: maas.Ref("go-nb", 0)})
	}
	var streamErr error
	for _, err := range d.ClassifyStream(testContext(t), bad) {
		if err != nil {
			streamErr = err
		}
	}
	wantCode(t, streamErr, codes.InvalidArgument, "texts")

	// Vectorize: the CountVectorizer rows and feature names.
	vec, err := d.Vectorize(testContext(t), &discriminativev1.VectorizeRequest{
		Model: maas.Ref("go-nb", 0), Texts: queries, IncludeFeatureNames: true})
	if err != nil {
		t.Fatal(err)
	}
	if vec.GetNumFeatures() != uint64(len(oracle.vocabulary)) || len(vec.GetRows()) != len(queries) {
		t.Fatalf("Vectorize: %d features, %d rows", vec.GetNumFeatures(), len(vec.GetRows()))
	}
	for i, q := range queries {
		want := oracle.counts(q)
		row := vec.GetRows()[i]
		if len(row.GetIndices()) != len(want) || !slices.IsSorted(row.GetIndices()) {
			t.Fatalf("%q: indices %v, want the keys of %v ascending", q, row.GetIndices(), want)
		}
		for j, f := range row.GetIndices() {
			if want[int(f)] != row.GetValues()[j] || vec.GetFeatureNames()[f] != oracle.vocabulary[f] {
				t.Fatalf("%q: feature %d (%q) = %v, want %q = %v", q, f, vec.GetFeatureNames()[f], row.GetValues()[j],
					oracle.vocabulary[f], want[int(f)])
			}
		}
	}

	// Evaluate on the training corpus: accuracy, confusion matrix and log loss from the oracle's predictions.
	eval, err := d.Evaluate(testContext(t), &discriminativev1.EvaluateConfig{Model: maas.Ref("go-nb", 0)}, maas.Batches(corpus, 4))
	if err != nil {
		t.Fatal(err)
	}
	k := len(oracle.classes)
	confusion := make([]float64, k*k)
	correct, logLoss := 0.0, 0.0
	for _, e := range corpus {
		label, logProb := oracle.logProba(e.GetText())
		truth := slices.Index(oracle.classes, e.GetLabel())
		confusion[truth*k+slices.Index(oracle.classes, label)]++
		if label == e.GetLabel() {
			correct++
		}
		logLoss -= logProb[truth]
	}
	if eval.GetNumDocuments() != uint64(len(corpus)) || !near(eval.GetAccuracy(), correct/float64(len(corpus))) ||
		!slices.Equal(eval.GetConfusionMatrix().GetValues(), confusion) || !near(eval.GetLogLoss(), logLoss/float64(len(corpus))) {
		t.Fatalf("Evaluate = %v; want accuracy %v, confusion %v, log loss %v", eval, correct/float64(len(corpus)), confusion,
			logLoss/float64(len(corpus)))
	}

	// GetModel exports the fitted state; CreateModel imports it as a new model that answers the same.
	got, err := d.GetModel(testContext(t), &discriminativev1.GetModelRequest{Model: maas.Ref("go-nb", 0)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.GetSpec().GetVectorizer().GetVocabulary(), oracle.vocabulary) {
		t.Fatalf("vocabulary %v, want %v", got.GetSpec().GetVectorizer().GetVocabulary(), oracle.vocabulary)
	}
	if _, err := d.CreateModel(testContext(t), &discriminativev1.CreateModelRequest{Name: "go-nb-copy", Spec: got.GetSpec()}); err != nil {
		t.Fatal(err)
	}
	copied, err := d.Classify(testContext(t), &discriminativev1.ClassifyRequest{Model: maas.Ref("go-nb-copy", 0), Texts: queries})
	if err != nil {
		t.Fatal(err)
	}
	for i := range queries {
		if !proto.Equal(copied.GetResults()[i], resp.GetResults()[i]) {
			t.Fatalf("imported copy answers %v, original %v", copied.GetResults()[i], resp.GetResults()[i])
		}
	}
	list, err := d.ListModels(testContext(t), &commonv1.ListModelsRequest{NamePrefix: "go-nb"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetModels()) != 2 {
		t.Fatalf("ListModels(go-text*) = %v", list)
	}
	for _, name := range []string{"go-nb", "go-nb-copy"} {
		if _, err := d.DeleteModel(testContext(t), &commonv1.DeleteModelRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = d.Classify(testContext(t), &discriminativev1.ClassifyRequest{Model: maas.Ref("go-nb", 0), Texts: queries})
	wantCode(t, err, codes.NotFound, "go-nb")
	// Train without examples is refused.
	_, err = d.Train(testContext(t), &discriminativev1.TrainConfig{Name: "go-empty"}, nil)
	wantCode(t, err, codes.InvalidArgument)
}
