package maas

import (
	"context"

	commonv1 "github.com/maas-project/maas/clients/go/gen/maas/common/v1"
	gatewayv1 "github.com/maas-project/maas/clients/go/gen/maas/gateway/v1"
)

// GatewayClient wraps maas.gateway.v1.Gateway, the gateway's own service: one method per RPC, same names.
// (Everything else reaches the backends through the gateway with Client.Generative and Client.Discriminative.)
type GatewayClient struct {
	caller
	raw gatewayv1.GatewayClient
}

// Raw returns the generated client.
func (g *GatewayClient) Raw() gatewayv1.GatewayClient { return g.raw }

// ListModels lists the models of both backends; each ModelInfo carries its ModelType.
// One page when req has a PageSize (then, without MaxPageBytes, no larger than the client receives);
// ListAllModels pages through everything.
func (g *GatewayClient) ListModels(ctx context.Context,
	req *commonv1.ListModelsRequest) (*commonv1.ListModelsResponse, error) {
	return unary(g.caller, ctx, "Gateway.ListModels", withPageBytes(g.caller, req), g.raw.ListModels)
}

// GetBackends returns each route, its target and its health.
func (g *GatewayClient) GetBackends(ctx context.Context,
	req *gatewayv1.GetBackendsRequest) (*gatewayv1.GetBackendsResponse, error) {
	return unary(g.caller, ctx, "Gateway.GetBackends", req, g.raw.GetBackends)
}
