package maas

import (
	"context"
	"iter"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/maas-project/maas/clients/go/gen/maas/common/v1"
)

// MaxPageSize is the largest ListModelsRequest.PageSize the servers take (a larger one is taken as this), and
// the page size of ListModelsPages and ListAllModels when the request sets none.
const MaxPageSize = 1000

// listModelsCall is a generated ListModels stub (of either service or of the gateway).
type listModelsCall func(context.Context, *commonv1.ListModelsRequest, ...grpc.CallOption) (*commonv1.ListModelsResponse, error)

// withPageBytes is req for one ListModels call: a page (PageSize > 0) without MaxPageBytes asks for pages no larger
// than the client receives, as listPages does. req itself is not modified.
func withPageBytes(c caller, req *commonv1.ListModelsRequest) *commonv1.ListModelsRequest {
	if req.GetPageSize() <= 0 || req.GetMaxPageBytes() != 0 || c.maxMessageBytes <= 0 {
		return req
	}
	paged := proto.CloneOf(req)
	paged.MaxPageBytes = int64(c.maxMessageBytes)
	return paged
}

// listPages yields the pages of the listing req describes: req with PageSize MaxPageSize when it has none (0) and
// MaxPageBytes the client's largest message received when it has none (0), starting at req.PageToken, then each
// next_page_token until one is empty. req is not modified. Each page is one unary call under the default deadline
// (ctx's deadline, when it has one, bounds the whole listing). An error ends the sequence (yielded once, with a nil
// page). A server that ignores page_size (older than paging) answers
// everything in one page with an empty token: one page.
func listPages(c caller, ctx context.Context, rpc string, req *commonv1.ListModelsRequest,
	call listModelsCall) iter.Seq2[*commonv1.ListModelsResponse, error] {
	return func(yield func(*commonv1.ListModelsResponse, error) bool) {
		next := &commonv1.ListModelsRequest{}
		if req != nil {
			next = proto.CloneOf(req)
		}
		if next.GetPageSize() == 0 {
			next.PageSize = MaxPageSize
		}
		if next.GetMaxPageBytes() == 0 && c.maxMessageBytes > 0 {
			// No page larger than the client receives (WithMaxMessageBytes), whatever the servers' limit.
			next.MaxPageBytes = int64(c.maxMessageBytes)
		}
		sent := map[string]bool{next.GetPageToken(): true} // a token answered again would start a loop
		for {
			page, err := unary(c, ctx, rpc, next, call)
			if err != nil {
				yield(nil, err)
				return
			}
			token := page.GetNextPageToken()
			if token != "" && sent[token] {
				// The same pages would come back forever: a server bug, reported rather than looped on.
				s := status.New(codes.Internal, "the server answered a page_token it was sent before as next_page_token: "+
					"the listing does not advance")
				yield(nil, &Error{RPC: rpc, Code: s.Code(), Message: s.Message(), status: s})
				return
			}
			if !yield(page, nil) || token == "" {
				return
			}
			next.PageToken = token
			sent[token] = true
		}
	}
}

// listAll concatenates the pages of a listing into one response: models and unreadable_versions in page order
// (so ordered by name, version, type, as the pages are), missing_backends without repeats, in the order first
// seen; next_page_token empty. The first error is returned (with no partial listing: ListModelsPages gives
// the pages as they come).
func listAll(pages iter.Seq2[*commonv1.ListModelsResponse, error]) (*commonv1.ListModelsResponse, error) {
	all := &commonv1.ListModelsResponse{}
	for page, err := range pages {
		if err != nil {
			return nil, err
		}
		all.Models = append(all.Models, page.GetModels()...)
		all.UnreadableVersions = append(all.UnreadableVersions, page.GetUnreadableVersions()...)
		for _, missing := range page.GetMissingBackends() {
			if !slices.Contains(all.MissingBackends, missing) {
				all.MissingBackends = append(all.MissingBackends, missing)
			}
		}
	}
	return all, nil
}

// ListModelsPages yields the pages of the listing of req, following each next_page_token (req.PageSize 0: pages
// of MaxPageSize; req.PageToken: start there); each range over the result is one listing, and breaking out of
// the loop stops it. Every page is one call of ListModels with the client's default deadline unless ctx has
// one, which then bounds the whole listing.
//
//	for page, err := range client.Gateway.ListModelsPages(ctx, &commonv1.ListModelsRequest{NamePrefix: "news-"}) {
//		if err != nil { return err }
//		for _, m := range page.GetModels() { ... }
//	}
func (g *GatewayClient) ListModelsPages(ctx context.Context,
	req *commonv1.ListModelsRequest) iter.Seq2[*commonv1.ListModelsResponse, error] {
	return listPages(g.caller, ctx, "Gateway.ListModels", req, g.raw.ListModels)
}

// ListAllModels returns the complete listing of req, whatever the size of the stores: every page of
// ListModelsPages, models and unreadable_versions concatenated, missing_backends collected without repeats (a
// backend that did not answer is missing from the pages it was asked for: non-empty means incomplete). The
// single-answer call, refused RESOURCE_EXHAUSTED when the listing exceeds a message, is ListModels.
func (g *GatewayClient) ListAllModels(ctx context.Context,
	req *commonv1.ListModelsRequest) (*commonv1.ListModelsResponse, error) {
	return listAll(g.ListModelsPages(ctx, req))
}

// ListModelsPages yields the pages of the generative listing of req, as GatewayClient.ListModelsPages.
func (g *GenerativeClient) ListModelsPages(ctx context.Context,
	req *commonv1.ListModelsRequest) iter.Seq2[*commonv1.ListModelsResponse, error] {
	return listPages(g.caller, ctx, "GenerativeService.ListModels", req, g.raw.ListModels)
}

// ListAllModels returns every generative model req covers, paging as GatewayClient.ListAllModels.
func (g *GenerativeClient) ListAllModels(ctx context.Context,
	req *commonv1.ListModelsRequest) (*commonv1.ListModelsResponse, error) {
	return listAll(g.ListModelsPages(ctx, req))
}

// ListModelsPages yields the pages of the discriminative listing of req, as GatewayClient.ListModelsPages.
func (d *DiscriminativeClient) ListModelsPages(ctx context.Context,
	req *commonv1.ListModelsRequest) iter.Seq2[*commonv1.ListModelsResponse, error] {
	return listPages(d.caller, ctx, "DiscriminativeService.ListModels", req, d.raw.ListModels)
}

// ListAllModels returns every discriminative model req covers, paging as GatewayClient.ListAllModels.
func (d *DiscriminativeClient) ListAllModels(ctx context.Context,
	req *commonv1.ListModelsRequest) (*commonv1.ListModelsResponse, error) {
	return listAll(d.ListModelsPages(ctx, req))
}
