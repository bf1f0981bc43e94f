package maas

import (
	"context"
	"fmt"
	"iter"

	"google.golang.org/grpc"

	commonv1 "github.com/maas-project/maas/clients/go/gen/maas/common/v1"
	discriminativev1 "github.com/maas-project/maas/clients/go/gen/maas/discriminative/v1"
)

// DiscriminativeClient wraps maas.discriminative.v1.DiscriminativeService: one method per RPC, same names.
type DiscriminativeClient struct {
	caller
	raw  discriminativev1.DiscriminativeServiceClient
	conn grpc.ClientConnInterface // for the *Bytes methods (textbytes.go)
}

// Raw returns the generated client, for what the wrapper does not cover.
func (d *DiscriminativeClient) Raw() discriminativev1.DiscriminativeServiceClient { return d.raw }

// CreateModel stores a pipeline given its fitted state (how a scikit-learn model is imported).
func (d *DiscriminativeClient) CreateModel(ctx context.Context,
	req *discriminativev1.CreateModelRequest) (*discriminativev1.CreateModelResponse, error) {
	return unary(d.caller, ctx, "DiscriminativeService.CreateModel", req, d.raw.CreateModel)
}

// Train trains a pipeline: config first, then each batch of labelled texts (see Batches), pulled lazily, so a
// corpus need not be in memory. To abort while the batches are produced, cancel ctx: nothing is stored. batches
// runs on a goroutine of the client's: the deadline and ctx end the call even while it blocks, and its next yield
// then returns false; a panic of batches is raised again here (see the package documentation).
func (d *DiscriminativeClient) Train(ctx context.Context, config *discriminativev1.TrainConfig,
	batches iter.Seq[*discriminativev1.TextBatch]) (*discriminativev1.TrainResponse, error) {
	first := &discriminativev1.TrainRequest{Message: &discriminativev1.TrainRequest_Config{Config: config}}
	rest := mapSeq(batches, func(b *discriminativev1.TextBatch) *discriminativev1.TrainRequest {
		return &discriminativev1.TrainRequest{Message: &discriminativev1.TrainRequest_Batch{Batch: b}}
	})
	return clientStream(d.caller, ctx, "DiscriminativeService.Train", d.raw.Train, first, rest,
		func(msg *discriminativev1.TrainRequest, i int) error { return checkBatch(msg.GetBatch(), i) })
}

// checkBatch refuses batches[i] of Train or Evaluate when it holds a string that is not UTF-8 (see checkRequest).
func checkBatch(batch *discriminativev1.TextBatch, i int) error {
	return checkRequest(batch, fmt.Sprintf("batches[%d].", i))
}

// Classify classifies req.Texts, or req.PackedTexts (see PackTexts).
func (d *DiscriminativeClient) Classify(ctx context.Context,
	req *discriminativev1.ClassifyRequest) (*discriminativev1.ClassifyResponse, error) {
	return unary(d.caller, ctx, "DiscriminativeService.Classify", req, d.raw.Classify)
}

// ClassifyStream sends each request of requests on one bidi stream and yields the matching responses, in
// order, as they arrive (each range over the result is one call; breaking out cancels it). requests runs on a
// goroutine of the client's; a panic of it cancels the call and is raised again, with its value, in the loop
// ranging over the responses.
func (d *DiscriminativeClient) ClassifyStream(ctx context.Context,
	requests iter.Seq[*discriminativev1.ClassifyRequest]) iter.Seq2[*discriminativev1.ClassifyResponse, error] {
	return bidiStream(ctx, "DiscriminativeService.ClassifyStream", requests, d.raw.ClassifyStream)
}

// Vectorize returns the sparse feature rows of req.Texts, or of req.PackedTexts (see PackTexts).
func (d *DiscriminativeClient) Vectorize(ctx context.Context,
	req *discriminativev1.VectorizeRequest) (*discriminativev1.VectorizeResponse, error) {
	return unary(d.caller, ctx, "DiscriminativeService.Vectorize", req, d.raw.Vectorize)
}

// Evaluate scores a model on streamed labelled texts: config first, then each batch (pulled as Train's).
func (d *DiscriminativeClient) Evaluate(ctx context.Context, config *discriminativev1.EvaluateConfig,
	batches iter.Seq[*discriminativev1.TextBatch]) (*discriminativev1.EvaluateResponse, error) {
	first := &discriminativev1.EvaluateRequest{Message: &discriminativev1.EvaluateRequest_Config{Config: config}}
	rest := mapSeq(batches, func(b *discriminativev1.TextBatch) *discriminativev1.EvaluateRequest {
		return &discriminativev1.EvaluateRequest{Message: &discriminativev1.EvaluateRequest_Batch{Batch: b}}
	})
	return clientStream(d.caller, ctx, "DiscriminativeService.Evaluate", d.raw.Evaluate, first, rest,
		func(msg *discriminativev1.EvaluateRequest, i int) error { return checkBatch(msg.GetBatch(), i) })
}

// GetModel returns a model's info and full pipeline state.
func (d *DiscriminativeClient) GetModel(ctx context.Context,
	req *discriminativev1.GetModelRequest) (*discriminativev1.GetModelResponse, error) {
	return unary(d.caller, ctx, "DiscriminativeService.GetModel", req, d.raw.GetModel)
}

// ListModels lists the discriminative models (nil request: every model, latest versions).
// One page when req has a PageSize (then, without MaxPageBytes, no larger than the client receives);
// ListAllModels pages through everything.
func (d *DiscriminativeClient) ListModels(ctx context.Context,
	req *commonv1.ListModelsRequest) (*commonv1.ListModelsResponse, error) {
	return unary(d.caller, ctx, "DiscriminativeService.ListModels", withPageBytes(d.caller, req), d.raw.ListModels)
}

// DeleteModel deletes one version (req.Version >= 1) or every version (0) of a model.
func (d *DiscriminativeClient) DeleteModel(ctx context.Context,
	req *commonv1.DeleteModelRequest) (*commonv1.DeleteModelResponse, error) {
	return unary(d.caller, ctx, "DiscriminativeService.DeleteModel", req, d.raw.DeleteModel)
}
