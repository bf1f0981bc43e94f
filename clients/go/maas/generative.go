package maas

import (
	"context"
	"fmt"
	"iter"

	commonv1 "github.com/maas-project/maas/clients/go/gen/maas/common/v1"
	generativev1 "github.com/maas-project/maas/clients/go/gen/maas/generative/v1"
)

// GenerativeClient wraps maas.generative.v1.GenerativeService: one method per RPC, same names.
type GenerativeClient struct {
	caller
	raw generativev1.GenerativeServiceClient
}

// Raw returns the generated client, for what the wrapper does not cover (per-call grpc.CallOptions, say).
func (g *GenerativeClient) Raw() generativev1.GenerativeServiceClient { return g.raw }

// CreateModel stores a model given explicit parameters (version 1, or the next version of an existing name).
func (g *GenerativeClient) CreateModel(ctx context.Context,
	req *generativev1.CreateModelRequest) (*generativev1.CreateModelResponse, error) {
	return unary(g.caller, ctx, "GenerativeService.CreateModel", req, g.raw.CreateModel)
}

// FitModel fits a model to streamed rows: config first, then each chunk of chunks (see NewMatrix and
// SplitRows). To abort while the chunks are produced, cancel ctx: nothing is stored. A chunk whose values do not
// fill its rows x cols fails the call with INVALID_ARGUMENT before it is sent (nothing is stored). chunks runs
// on a goroutine of the client's: the deadline and ctx end the call even while it blocks, and its next yield then
// returns false; a panic of chunks is raised again here (see the package documentation).
func (g *GenerativeClient) FitModel(ctx context.Context, config *generativev1.FitConfig,
	chunks iter.Seq[*commonv1.Matrix]) (*generativev1.FitModelResponse, error) {
	first := &generativev1.FitModelRequest{Message: &generativev1.FitModelRequest_Config{Config: config}}
	rest := mapSeq(chunks, func(m *commonv1.Matrix) *generativev1.FitModelRequest {
		return &generativev1.FitModelRequest{Message: &generativev1.FitModelRequest_Rows{Rows: m}}
	})
	return clientStream(g.caller, ctx, "GenerativeService.FitModel", g.raw.FitModel, first, rest, checkRows)
}

// checkRows refuses a FitModel chunk whose values do not fill its rows x cols (the Matrix helpers cannot slice it).
func checkRows(msg *generativev1.FitModelRequest, i int) error {
	if err := checkShape(msg.GetRows()); err != nil {
		return fmt.Errorf("chunk %d of rows: %w", i, err)
	}
	return nil
}

// Sample streams the samples of req in batches (each range over the result is one call):
//
//	for batch, err := range client.Generative.Sample(ctx, req) {
//		if err != nil { return err }
//		rows, _ := maas.Rows(batch.GetX())
//	}
func (g *GenerativeClient) Sample(ctx context.Context,
	req *generativev1.SampleRequest) iter.Seq2[*generativev1.SampleBatch, error] {
	return serverStream(ctx, "GenerativeService.Sample", req, g.raw.Sample)
}

// EstimateLogLikelihood estimates log p(x) per row of req.X with req.Estimator.
func (g *GenerativeClient) EstimateLogLikelihood(ctx context.Context,
	req *generativev1.EstimateLogLikelihoodRequest) (*generativev1.EstimateLogLikelihoodResponse, error) {
	return unary(g.caller, ctx, "GenerativeService.EstimateLogLikelihood", req, g.raw.EstimateLogLikelihood)
}

// StreamEstimate streams running estimates until the target standard error, the sample cap or the deadline of
// ctx; the last message has a StopReason.
func (g *GenerativeClient) StreamEstimate(ctx context.Context,
	req *generativev1.StreamEstimateRequest) iter.Seq2[*generativev1.StreamEstimateResponse, error] {
	return serverStream(ctx, "GenerativeService.StreamEstimate", req, g.raw.StreamEstimate)
}

// GetModel returns a model's info and full parameters.
func (g *GenerativeClient) GetModel(ctx context.Context,
	req *generativev1.GetModelRequest) (*generativev1.GetModelResponse, error) {
	return unary(g.caller, ctx, "GenerativeService.GetModel", req, g.raw.GetModel)
}

// ListModels lists the generative models (nil request: every model, latest versions).
// One page when req has a PageSize (then, without MaxPageBytes, no larger than the client receives);
// ListAllModels pages through everything.
func (g *GenerativeClient) ListModels(ctx context.Context,
	req *commonv1.ListModelsRequest) (*commonv1.ListModelsResponse, error) {
	return unary(g.caller, ctx, "GenerativeService.ListModels", withPageBytes(g.caller, req), g.raw.ListModels)
}

// DeleteModel deletes one version (req.Version >= 1) or every version (0) of a model.
func (g *GenerativeClient) DeleteModel(ctx context.Context,
	req *commonv1.DeleteModelRequest) (*commonv1.DeleteModelResponse, error) {
	return unary(g.caller, ctx, "GenerativeService.DeleteModel", req, g.raw.DeleteModel)
}
