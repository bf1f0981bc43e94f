package maas_test

import (
	"context"
	"errors"
	"iter"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/maas-project/maas/clients/go/gen/maas/common/v1"
	generativev1 "github.com/maas-project/maas/clients/go/gen/maas/generative/v1"
	"github.com/maas-project/maas/clients/go/maas"
)

func uniformSpec(low, high []float64) *generativev1.GenerativeModelSpec {
	return &generativev1.GenerativeModelSpec{Family: &generativev1.GenerativeModelSpec_Uniform{
		Uniform: &generativev1.UniformSpec{Low: low, High: high}}}
}

// sampleRows collects every row of a Sample stream, checking that batches are contiguous and carry the seed.
func sampleRows(t *testing.T, g *maas.GenerativeClient, req *generativev1.SampleRequest) [][]float64 {
	t.Helper()
	var rows [][]float64
	next := req.GetStartIndex()
	for batch, err := range g.Sample(testContext(t), req) {
		if err != nil {
			t.Fatalf("Sample: %v", err)
		}
		if batch.GetStartIndex() != next {
			t.Fatalf("batch starts at %d, want %d", batch.GetStartIndex(), next)
		}
		if req.Seed != nil && batch.GetSeed() != req.GetSeed() {
			t.Fatalf("batch seed %d, want %d", batch.GetSeed(), req.GetSeed())
		}
		x, err := maas.Rows(batch.GetX())
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, x...)
		next += uint64(len(x))
	}
	return rows
}

func wantCode(t *testing.T, err error, code codes.Code, mentions ...string) *maas.Error {
	t.Helper()
	var e *maas.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a *maas.Error with %v, got %T %v", code, err, err)
	}
	if e.Code != code || maas.Code(err) != code {
		t.Fatalf("want %v, got %v: %s", code, e.Code, e.Message)
	}
	if strings.TrimSpace(e.Message) == "" {
		t.Fatalf("%v carries an empty message", code)
	}
	for _, m := range mentions {
		if !strings.Contains(strings.ToLower(e.Message), strings.ToLower(m)) {
			t.Fatalf("%v message %q does not mention %q", code, e.Message, m)
		}
	}
	return e
}

func TestGenerativeCreateSampleEstimate(t *testing.T) {
	c := dialGateway(t)
	g := c.Generative
	low, high := []float64{0, -1}, []float64{1, 1}
	created, err := g.CreateModel(testContext(t), &generativev1.CreateModelRequest{
		Name: "go-sample-box", Spec: uniformSpec(low, high), Description: "from the Go client"})
	if err != nil {
		t.Fatal(err)
	}
	if info := created.GetInfo(); info.GetVersion() != 1 || info.GetFamily() != "uniform" ||
		info.GetType() != commonv1.ModelType_GENERATIVE || info.GetDimension() != 2 {
		t.Fatalf("CreateModel info = %v", info)
	}

	// The same seed gives the same rows whatever the batch size; a shard is the matching slice of the stream.
	seed := uint64(7)
	whole := sampleRows(t, g, &generativev1.SampleRequest{
		Model: maas.Ref("go-sample-box", 0), NumSamples: 500, Seed: &seed, BatchSize: 500})
	small := sampleRows(t, g, &generativev1.SampleRequest{
		Model: maas.Ref("go-sample-box", 1), NumSamples: 500, Seed: &seed, BatchSize: 7})
	if len(whole) != 500 || !slices.EqualFunc(whole, small, slices.Equal) {
		t.Fatalf("%d rows; batch size changed the samples", len(whole))
	}
	shard := sampleRows(t, g, &generativev1.SampleRequest{
		Model: maas.Ref("go-sample-box", 0), NumSamples: 20, Seed: &seed, StartIndex: 100, BatchSize: 3})
	if !slices.EqualFunc(shard, whole[100:120], slices.Equal) {
		t.Fatal("rows 100..119 of the stream differ from the start_index=100 shard")
	}
	for i, row := range whole {
		for d, v := range row {
			if v < low[d] || v > high[d] {
				t.Fatalf("row %d: %v outside the box", i, row)
			}
		}
	}
	// A request without a seed gets a fresh one, returned in every batch: asking again with it repeats the rows.
	var fresh uint64
	var first [][]float64
	for batch, err := range g.Sample(testContext(t), &generativev1.SampleRequest{
		Model: maas.Ref("go-sample-box", 0), NumSamples: 10}) {
		if err != nil {
			t.Fatal(err)
		}
		fresh = batch.GetSeed()
		x, _ := maas.Rows(batch.GetX())
		first = append(first, x...)
	}
	again := sampleRows(t, g, &generativev1.SampleRequest{Model: maas.Ref("go-sample-box", 0), NumSamples: 10, Seed: &fresh})
	if !slices.EqualFunc(first, again, slices.Equal) {
		t.Fatal("the returned fresh seed does not reproduce the samples")
	}

	// Exact log-likelihood: the box has density 1/prod(high-low) inside and none outside (closed form).
	x, _ := maas.NewMatrix([][]float64{{0.5, 0}, {2, 0}, {0.25, -0.75}})
	want := -math.Log((high[0] - low[0]) * (high[1] - low[1]))
	est, err := g.EstimateLogLikelihood(testContext(t), &generativev1.EstimateLogLikelihoodRequest{
		Model: maas.Ref("go-sample-box", 0), X: x, Estimator: generativev1.Estimator_EXACT})
	if err != nil {
		t.Fatal(err)
	}
	got := est.GetRows()
	if len(got) != 3 || math.Abs(got[0].GetLogLikelihood()-want) > 1e-15 || !math.IsInf(got[1].GetLogLikelihood(), -1) ||
		math.Abs(got[2].GetLogLikelihood()-want) > 1e-15 || est.GetModelVersion() != 1 {
		t.Fatalf("EstimateLogLikelihood = %v, want [%v -Inf %v]", est, want, want)
	}
	// StreamEstimate with EXACT answers once, with the same values.
	var messages []*generativev1.StreamEstimateResponse
	for msg, err := range g.StreamEstimate(testContext(t), &generativev1.StreamEstimateRequest{
		Request: &generativev1.EstimateLogLikelihoodRequest{
			Model: maas.Ref("go-sample-box", 0), X: x, Estimator: generativev1.Estimator_EXACT}}) {
		if err != nil {
			t.Fatal(err)
		}
		messages = append(messages, msg)
	}
	if len(messages) != 1 || messages[0].GetStopReason() != generativev1.StopReason_EXACT_RESULT ||
		!proto.Equal(messages[0].GetEstimate(), est) {
		t.Fatalf("StreamEstimate = %v, want one EXACT_RESULT equal to %v", messages, est)
	}

	// Bad input: the typed error carries the server's code and message.
	wide, _ := maas.NewMatrix([][]float64{{1, 2, 3}})
	_, err = g.EstimateLogLikelihood(testContext(t), &generativev1.EstimateLogLikelihoodRequest{
		Model: maas.Ref("go-sample-box", 0), X: wide})
	wantCode(t, err, codes.FailedPrecondition, "3 columns")
	_, err = g.CreateModel(testContext(t), &generativev1.CreateModelRequest{Name: "Bad Name!", Spec: uniformSpec(low, high)})
	wantCode(t, err, codes.InvalidArgument, "name")
	for _, err := range g.Sample(testContext(t), &generativev1.SampleRequest{Model: maas.Ref("no-such-model", 0), NumSamples: 1}) {
		e := wantCode(t, err, codes.NotFound, "no-such-model")
		if e.RPC != "GenerativeService.Sample" || !strings.Contains(e.Error(), "NOT_FOUND") {
			t.Fatalf("error %q names RPC %q", e.Error(), e.RPC)
		}
	}
}

func TestGenerativeFitGetListDelete(t *testing.T) {
	g := dialGateway(t).Generative
	// 2500 seeded rows in 3 columns, sent in chunks of 1000: the uniform fit is the per-column min and max.
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([][]float64, 2500)
	low, high := []float64{math.Inf(1), math.Inf(1), math.Inf(1)}, []float64{math.Inf(-1), math.Inf(-1), math.Inf(-1)}
	for i := range rows {
		rows[i] = []float64{rng.NormFloat64(), 10 * rng.Float64(), rng.ExpFloat64() - 5}
		for d, v := range rows[i] {
			low[d], high[d] = min(low[d], v), max(high[d], v)
		}
	}
	m, err := maas.NewMatrix(rows)
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(3)
	fit, err := g.FitModel(testContext(t), &generativev1.FitConfig{
		Name: "go-fit", Seed: &seed, Labels: map[string]string{"by": "go"},
		Family: &generativev1.FitConfig_Uniform{Uniform: &generativev1.UniformFit{}}}, maas.SplitRows(m, 1000))
	if err != nil {
		t.Fatal(err)
	}
	if fit.GetTrace().GetNumRows() != 2500 || fit.GetInfo().GetVersion() != 1 || fit.GetInfo().GetDimension() != 3 {
		t.Fatalf("FitModel = %v", fit)
	}
	got, err := g.GetModel(testContext(t), &generativev1.GetModelRequest{Model: maas.Ref("go-fit", 0)})
	if err != nil {
		t.Fatal(err)
	}
	if u := got.GetSpec().GetUniform(); !slices.Equal(u.GetLow(), low) || !slices.Equal(u.GetHigh(), high) {
		t.Fatalf("fitted box %v..%v, want %v..%v", u.GetLow(), u.GetHigh(), low, high)
	}
	if got.GetInfo().GetLabels()["by"] != "go" {
		t.Fatalf("labels %v", got.GetInfo().GetLabels())
	}
	// A second fit is version 2; ListModels shows the latest, or every version.
	if _, err := g.FitModel(testContext(t), &generativev1.FitConfig{
		Name: "go-fit", Family: &generativev1.FitConfig_Uniform{Uniform: &generativev1.UniformFit{}}},
		maas.SplitRows(m, 2500)); err != nil {
		t.Fatal(err)
	}
	list, err := g.ListModels(testContext(t), &commonv1.ListModelsRequest{NamePrefix: "go-fit", AllVersions: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetModels()) != 2 || list.GetModels()[1].GetVersion() != 2 {
		t.Fatalf("ListModels(all versions) = %v", list)
	}
	latest, err := g.ListModels(testContext(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(latest.GetModels(), func(i *commonv1.ModelInfo) bool {
		return i.GetName() == "go-fit" && i.GetVersion() == 2
	}) {
		t.Fatalf("ListModels() = %v lacks go-fit v2", latest)
	}
	// A fit whose chunks disagree in width is refused, and stores nothing.
	ragged := func(yield func(*commonv1.Matrix) bool) {
		a, _ := maas.NewMatrix([][]float64{{1, 2}})
		b, _ := maas.NewMatrix([][]float64{{1, 2, 3}})
		_ = yield(a) && yield(b)
	}
	_, err = g.FitModel(testContext(t), &generativev1.FitConfig{
		Name: "go-ragged", Family: &generativev1.FitConfig_Uniform{Uniform: &generativev1.UniformFit{}}}, ragged)
	wantCode(t, err, codes.InvalidArgument)
	_, err = g.GetModel(testContext(t), &generativev1.GetModelRequest{Model: maas.Ref("go-ragged", 0)})
	wantCode(t, err, codes.NotFound)

	deleted, err := g.DeleteModel(testContext(t), &commonv1.DeleteModelRequest{Name: "go-fit"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(deleted.GetDeletedVersions(), []int64{1, 2}) {
		t.Fatalf("deleted versions %v", deleted.GetDeletedVersions())
	}
	_, err = g.GetModel(testContext(t), &generativev1.GetModelRequest{Model: maas.Ref("go-fit", 0)})
	wantCode(t, err, codes.NotFound, "go-fit")
}

// A Matrix whose values do not fill rows x cols: Rows refuses it, SplitRows passes it on whole (it cannot slice
// it), and FitModel fails with INVALID_ARGUMENT naming the mismatch, storing nothing.
func TestMalformedMatrix(t *testing.T) {
	m := &commonv1.Matrix{Rows: 3, Cols: 2, Values: []float64{0.1, 0.2, 0.3, 0.4, 0.5}}
	const mismatch = "a 3x2 matrix carries 5 values"
	if _, err := maas.Rows(m); err == nil || !strings.Contains(err.Error(), mismatch) {
		t.Fatalf("Rows: %v", err)
	}
	var chunks []*commonv1.Matrix
	for chunk := range maas.SplitRows(m, 2) {
		chunks = append(chunks, chunk)
	}
	if len(chunks) != 1 || !proto.Equal(chunks[0], m) {
		t.Fatalf("SplitRows yielded %v, want the matrix whole", chunks)
	}
	g := dialGateway(t).Generative
	config := &generativev1.FitConfig{Name: "go-malformed",
		Family: &generativev1.FitConfig_Uniform{Uniform: &generativev1.UniformFit{}}}
	good, _ := maas.NewMatrix([][]float64{{1, 2}})
	for _, chunks := range []iter.Seq[*commonv1.Matrix]{
		maas.SplitRows(m, 2),
		func(yield func(*commonv1.Matrix) bool) { _ = yield(good) && yield(m) },
	} {
		_, err := g.FitModel(testContext(t), config, chunks)
		e := wantCode(t, err, codes.InvalidArgument, mismatch)
		if e.RPC != "GenerativeService.FitModel" {
			t.Fatalf("RPC %q", e.RPC)
		}
	}
	_, err := g.GetModel(testContext(t), &generativev1.GetModelRequest{Model: maas.Ref("go-malformed", 0)})
	wantCode(t, err, codes.NotFound)
}

// The longest deadline a Go context holds (math.MaxInt64 ns, sent as grpc-timeout 2562047H) ends past the year
// 2262, where a std::chrono nanosecond time point overflows: the servers read it as a deadline already passed and
// failed every call at once with DEADLINE_EXCEEDED (and StreamEstimate stopped at once). It is no deadline passed.
func TestFarDeadline(t *testing.T) {
	g := dialGateway(t).Generative
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(math.MaxInt64))
	defer cancel()
	if _, err := g.ListModels(ctx, &commonv1.ListModelsRequest{}); err != nil {
		t.Fatalf("ListModels: %v", err)
	}
	means, _ := maas.NewMatrix([][]float64{{0}})
	variances, _ := maas.NewMatrix([][]float64{{1}})
	spec := &generativev1.GenerativeModelSpec{Family: &generativev1.GenerativeModelSpec_GaussianMixture{
		GaussianMixture: &generativev1.GaussianMixtureSpec{CovarianceType: generativev1.CovarianceType_DIAG,
			Weights: []float64{1}, Means: means, Covariances: variances}}}
	if _, err := g.CreateModel(ctx, &generativev1.CreateModelRequest{Name: "go-far-deadline", Spec: spec}); err != nil {
		t.Fatalf("CreateModel: %v", err)
	}
	defer g.DeleteModel(testContext(t), &commonv1.DeleteModelRequest{Name: "go-far-deadline"})
	rows := 0
	for batch, err := range g.Sample(ctx, &generativev1.SampleRequest{Model: maas.Ref("go-far-deadline", 0), NumSamples: 5}) {
		if err != nil {
			t.Fatalf("Sample: %v", err)
		}
		rows += int(batch.GetX().GetRows())
	}
	if rows != 5 {
		t.Fatalf("Sample gave %d rows, want 5", rows)
	}
	x, _ := maas.NewMatrix([][]float64{{0.5}})
	var last *generativev1.StreamEstimateResponse
	for msg, err := range g.StreamEstimate(ctx, &generativev1.StreamEstimateRequest{MaxSamples: 300,
		Request: &generativev1.EstimateLogLikelihoodRequest{Model: maas.Ref("go-far-deadline", 0), X: x,
			Estimator: generativev1.Estimator_PRIOR, NumSamples: 100}}) {
		if err != nil {
			t.Fatalf("StreamEstimate: %v", err)
		}
		last = msg
	}
	if last.GetStopReason() != generativev1.StopReason_MAX_SAMPLES {
		t.Fatalf("StreamEstimate stopped with %v, want MAX_SAMPLES", last.GetStopReason())
	}
}

// One Sample or StreamEstimate sequence made with a nil request may be ranged over from several goroutines at once
// (each range is a call of its own); it was a data race (the sequence replaced the nil request by an empty one in
// the variable its ranges share), which `go test -race` reports.
func TestNilRequestSequenceRangedConcurrently(t *testing.T) {
	g := dialGateway(t).Generative
	sample := g.Sample(testContext(t), nil)
	estimate := g.StreamEstimate(testContext(t), nil)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for _, err := range sample {
				if maas.Code(err) != codes.InvalidArgument { // no model named
					t.Errorf("Sample(nil): %v", err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for _, err := range estimate {
				if maas.Code(err) != codes.InvalidArgument {
					t.Errorf("StreamEstimate(nil): %v", err)
				}
			}
		}()
	}
	wg.Wait()
}
